"""What the two Huawei Cloud vendors share: the API gateway in front of both (the shape of its
error bodies, and what its refusals of a credential mean for a person), their endpoints by
region (the official SDK's region files), and how Huawei credentials bind to an adapter.

The region tables are the SDK's (``codeartsrepo_region.py`` and ``codeartspipeline_region.py``);
one region's endpoint can be overridden as the SDK does, with
``HUAWEICLOUD_SDK_REGION_CODEARTSREPO_CN_NORTH_4`` (or ``..._CODEARTSPIPELINE_...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pipestatus.auth import Auth, Binding, HuaweiCredentials, token_auth
from pipestatus.auth._iam import gateway_advice
from pipestatus.vendors._base import json_error
from pipestatus.vendors._spec import Regions

__all__ = [
    "DEMO_AK",
    "DEMO_DOMAIN",
    "DEMO_PROJECT",
    "DEMO_USER",
    "HEADER",
    "PIPELINE_REGIONS",
    "REPO_REGIONS",
    "bind",
    "decode_error",
    "one_credential",
]

#: The header a Huawei token travels in, to the services and to IAM.
HEADER: Final = "X-Auth-Token"


def decode_error(body: bytes) -> tuple[str | None, str | None]:
    """Huawei's ``{"error_code", "error_msg"}`` (some services nest it under ``error``, with
    ``code``/``message``); the gateway's APIGW.0301 says what to check."""
    code, message = json_error(
        body, codes=("error_code", "code"), messages=("error_msg", "message", "msg"), nested="error"
    )
    return code, gateway_advice(code, message)


# --- regions -------------------------------------------------------------------------------------


def _table(rows: Mapping[str, str]) -> Mapping[str, str]:
    return {region: f"https://{host}.{region}.myhuaweicloud.com" for region, host in rows.items()}


_CLASSIC: Final = (
    "cn-north-1",
    "cn-north-4",
    "cn-east-2",
    "cn-east-3",
    "cn-south-1",
    "cn-south-2",
    "cn-southwest-2",
    "ap-southeast-3",
    "sa-brazil-1",
    "la-north-2",
)

#: CodeArts Repo v4, from the SDK's region file.
REPO_REGIONS: Final = Regions(
    service="CODEARTSREPO",
    endpoints=_table(
        {
            **dict.fromkeys(_CLASSIC, "codehub-ext"),
            "la-south-2": "codeartsrepo-ext",
            "tr-west-1": "codeartsrepo-ext",
            "eu-west-101": "codeartsrepo-ext",
            "me-east-1": "repo",
            "af-south-1": "repo",
            "af-north-1": "repo",
        }
    ),
)

#: CodeArts Pipeline v5, from the SDK's region file.
PIPELINE_REGIONS: Final = Regions(
    service="CODEARTSPIPELINE",
    endpoints=_table(
        {
            **dict.fromkeys(_CLASSIC, "cloudpipeline-ext"),
            "la-south-2": "pipeline-external",
            "tr-west-1": "pipeline-external",
            "me-east-1": "pipeline",
            "af-south-1": "pipeline",
            "af-north-1": "pipeline",
        }
    ),
)


# --- credentials ---------------------------------------------------------------------------------


def one_credential(token: object, credentials: object) -> object:
    """Exactly one of ``token=`` and ``credentials=``; ``ValueError`` otherwise."""
    if (token is None) == (credentials is None):
        raise ValueError("give exactly one of token and credentials")
    if isinstance(token, HuaweiCredentials):
        raise TypeError(f"{type(token).__name__} goes in credentials=, not token=")
    if credentials is not None and not isinstance(credentials, HuaweiCredentials):
        raise TypeError(
            "credentials must be HuaweiAKSK, HuaweiIAM or another HuaweiCredentials, "
            f"not {type(credentials).__name__}"
        )
    return token if credentials is None else credentials


def bind(credentials: object, *, region: str | None, project_id: str | None) -> Auth:
    """The auth of one Huawei adapter: a token (string or provider) in :data:`HEADER`, or
    Huawei credentials bound to the adapter's region and project."""
    if isinstance(credentials, HuaweiCredentials):
        return credentials.bind(Binding(token_header=HEADER, region=region, project_id=project_id))
    if isinstance(credentials, str) or callable(credentials):
        return token_auth(HEADER, credentials)
    raise TypeError(f"a token or Huawei credentials, not {type(credentials).__name__}")


# --- the demo account's credentials (the simulated server knows them) ----------------------------

#: The access key of the simulated server's AK/SK account; its SK is the server's token.
DEMO_AK: Final = "SIMULATEDAK0123456789"
#: The simulated IAM user (its password is the server's token), its account and project.
DEMO_USER: Final = "sim-user"
DEMO_DOMAIN: Final = "sim-account"
DEMO_PROJECT: Final = "cn-north-4"
