"""Huawei Cloud IAM as the credentials see it: where it is, and what its calls send and answer.

* :func:`iam_url` picks the IAM endpoint: an explicit URL, the SDK's
  ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, the region's own (:data:`IAM_REGIONS`), or the global one.
* :func:`password_body`, :func:`assume_role_body` and :func:`security_token_body` are the
  request bodies; :func:`issue_token` and :func:`mint_keys` send them through the client's
  transport (its timeout, retries, body cap and redirect policy) and read the answers: a token
  from the ``X-Subject-Token`` header of a 201 with its ``expires_at``, temporary keys from
  ``credential``.
* :func:`find_project` asks IAM for a region's project ID, as the SDK does when none is given.
* :func:`gateway_advice` says what to check after the API gateway's ``APIGW.0301``.

What is fetched is cached by :mod:`pipestatus.auth._cache`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from pipestatus._sansio import Endpoint, Request, Response, Sealed, Sender, has_control
from pipestatus.auth._base import HIDDEN, Auth
from pipestatus.errors import ResponseError

__all__ = [
    "APIGW_AUTH",
    "GLOBAL_IAM",
    "IAM_REGIONS",
    "IAM_VENDOR",
    "IssuedKeys",
    "IssuedToken",
    "assume_role_body",
    "find_project",
    "gateway_advice",
    "iam_endpoint",
    "iam_url",
    "issue_token",
    "mint_keys",
    "password_body",
    "security_token_body",
]

#: ``APIError.vendor`` of IAM's own answers.
IAM_VENDOR: Final = "huawei_iam"
GLOBAL_IAM: Final = "https://iam.myhuaweicloud.com"
#: The regions with an IAM endpoint of their own, ``https://iam.{region}.myhuaweicloud.com``.
IAM_REGIONS: Final = frozenset(
    {
        "cn-north-1",
        "cn-north-2",
        "cn-north-4",
        "cn-north-9",
        "cn-north-12",
        "cn-east-2",
        "cn-east-3",
        "cn-east-4",
        "cn-east-5",
        "cn-south-1",
        "cn-south-2",
        "cn-southwest-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "af-south-1",
        "sa-brazil-1",
        "la-south-2",
        "la-north-2",
        "na-mexico-1",
        "eu-west-0",
        "my-kualalumpur-1",
        "ru-moscow-1",
        "me-east-1",
        "ae-ad-1",
        "tr-west-1",
    }
)
ENV_IAM_ENDPOINT: Final = "HUAWEICLOUD_SDK_IAM_ENDPOINT"
#: IAM's bounds on the lifetime of temporary keys and agency tokens, in seconds.
DURATION_RANGE: Final = (900, 86_400)

TOKENS_PATH: Final = "/v3/auth/tokens"
PROJECTS_PATH: Final = "/v3/projects"
SECURITY_TOKENS_PATH: Final = "/v3.0/OS-CREDENTIAL/securitytokens"


def iam_url(
    explicit: str | None,
    region: str | None,
    *,
    project: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The IAM endpoint: ``explicit``, else ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, else the
    region's (the adapter's region, or the region a project name such as ``cn-north-4`` or
    ``cn-north-4_team`` is in), else the global endpoint."""
    if explicit:
        return explicit
    override = (os.environ if environ is None else environ).get(ENV_IAM_ENDPOINT, "").strip()
    if override:
        return override
    for candidate in (region, (project or "").partition("_")[0]):
        if candidate in IAM_REGIONS:
            return f"https://iam.{candidate}.myhuaweicloud.com"
    return GLOBAL_IAM


#: The API gateway's code for a refused IAM credential: a signature or a token.
APIGW_AUTH: Final = "APIGW.0301"

_CLOCK_ADVICE: Final = (
    "the AK/SK signature was refused for its date: check this machine's clock "
    "(X-Sdk-Date must be within 15 minutes of the server's time)"
)
_AKSK_ADVICE: Final = (
    "the AK/SK signature was refused: check the AK and SK (a SK that does not belong to "
    "the AK, or a stray space), and that this machine's clock is right"
)
_TOKEN_ADVICE: Final = (
    "the IAM token was refused: it expired, was revoked, or belongs to another region"  # noqa: S105
)


def gateway_advice(code: str | None, message: str | None) -> str | None:
    """For the gateway's ``APIGW.0301``: what a person should check (the keys, the clock, the
    token), with the gateway's own words after it; any other message as it is."""
    if code != APIGW_AUTH:
        return message
    text = (message or "").lower()
    if "token" in text:
        advice = _TOKEN_ADVICE
    elif "date" in text or "expire" in text or "clock" in text:
        advice = _CLOCK_ADVICE
    else:
        advice = _AKSK_ADVICE
    return f"{advice} ({message})" if message else advice


def _decode_iam_error(body: bytes) -> tuple[str | None, str | None]:
    """IAM's error bodies: Keystone's ``{"error": {"code", "message", "title"}}`` or the
    gateway's ``{"error_code", "error_msg"}``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data = data["error"]
    if not isinstance(data, dict):
        return None, None
    raw_code = data.get("error_code", data.get("code"))
    raw_message = data.get("error_msg", data.get("message"))
    code = (
        str(raw_code)
        if isinstance(raw_code, str | int) and not isinstance(raw_code, bool)
        else None
    )
    message = raw_message if isinstance(raw_message, str) else None
    return code, gateway_advice(code, message)


class Hiding(Auth):
    """The auth of a request to IAM itself: adds nothing (or what ``inner`` adds), and hides
    the secrets that request carries in its body from whatever IAM echoes back."""

    __slots__ = ("_inner", "_secrets")

    def __init__(self, secrets: Callable[[], tuple[str, ...]], inner: Auth | None = None) -> None:
        self._secrets = secrets
        self._inner = inner

    async def prepare(self, sender: Sender) -> None:
        if self._inner is not None:
            await self._inner.prepare(sender)

    async def apply(self, request: Request, sender: Sender) -> Request:
        return request if self._inner is None else await self._inner.apply(request, sender)

    async def refresh(self, rejected: Request, sender: Sender) -> bool:
        return False if self._inner is None else await self._inner.refresh(rejected, sender)

    def hide(self, text: str) -> str:
        for secret in self._secrets():
            if secret and secret in text:
                text = text.replace(secret, HIDDEN)
        return text if self._inner is None else self._inner.hide(text)

    def __repr__(self) -> str:
        return "IAMRequestAuth(<hidden>)"


def iam_endpoint(url: str, auth: Auth) -> Endpoint:
    """The endpoint of IAM's calls: ``url`` with ``auth`` and IAM's error decoder."""
    return Endpoint.create(IAM_VENDOR, url, auth, _decode_iam_error)


# --- bodies ---------------------------------------------------------------------------------------


def _scope(project: str) -> dict[str, Any]:
    return {"project": {"name": project}}


def password_body(user: str, password: str, domain: str, project: str) -> dict[str, Any]:
    """A password token scoped to the project named ``project`` (``cn-north-4``)."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"domain": {"name": domain}, "name": user, "password": password}
                },
            },
            "scope": _scope(project),
        }
    }


def assume_role_body(
    agency: str,
    *,
    domain_name: str | None,
    domain_id: str | None,
    project: str,
    duration_seconds: int | None,
) -> dict[str, Any]:
    """An agency (assume-role) token scoped to ``project``, asked with the user's token."""
    role: dict[str, Any] = {"agency_name": agency}
    if domain_id is not None:
        role["domain_id"] = domain_id
    else:
        role["domain_name"] = domain_name
    if duration_seconds is not None:
        role["duration_seconds"] = duration_seconds
    return {
        "auth": {
            "identity": {"methods": ["assume_role"], "assume_role": role},
            "scope": _scope(project),
        }
    }


def security_token_body(token: str, duration_seconds: int) -> dict[str, Any]:
    """Temporary AK/SK and a security token, minted from ``token``."""
    return {
        "auth": {
            "identity": {
                "methods": ["token"],
                "token": {"id": token, "duration_seconds": duration_seconds},
            }
        }
    }


def check_duration(value: object, name: str = "duration_seconds") -> int:
    """A lifetime IAM accepts for temporary keys or an agency token: 900..86400 seconds."""
    low, high = DURATION_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high} (15 min to 24 h)")
    return value


# --- answers --------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A token from ``X-Subject-Token`` with its lifetime, and the project it is scoped to."""

    value: str = attrs.field(repr=False)
    received_at: datetime
    lifetime: timedelta
    project_id: str | None = None

    @property
    def ident(self) -> str:
        return self.value

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.value,)


@attrs.frozen(kw_only=True)
class IssuedKeys:
    """Temporary AK/SK with their security token and lifetime."""

    ak: str
    sk: str = attrs.field(repr=False)
    security_token: str = attrs.field(repr=False)
    received_at: datetime
    lifetime: timedelta

    @property
    def ident(self) -> str:
        return self.ak

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.sk, self.security_token)


def parse_expiry(value: object) -> datetime | None:
    """IAM's ``expires_at``/``issued_at`` (``2026-01-02T03:04:05.123000Z``) as aware UTC."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for form in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lifetime(
    expires: object, issued: object, received_at: datetime, what: str
) -> timedelta | ResponseError:
    """How long an issued value lives, counted from ``issued_at`` where IAM gives it (so a
    clock that differs from IAM's changes nothing), else from ``received_at``; or the error
    (returned, not raised: the callers' frames hold secrets)."""
    expires_at = parse_expiry(expires)
    if expires_at is None:
        return ResponseError(f"{what} without a readable expires_at", vendor=IAM_VENDOR)
    issued_at = parse_expiry(issued) or received_at
    lifetime = expires_at - issued_at
    if lifetime <= timedelta(0):
        return ResponseError(f"{what} that has expired already", vendor=IAM_VENDOR)
    return lifetime


def _secret_text(value: object) -> str | None:
    """A usable secret of an answer (a non-empty string a header can carry), else ``None``."""
    if isinstance(value, str) and value.strip() and not has_control(value):
        return value.strip()
    return None


# The two calls below read IAM's answers in pure functions that return their error instead of
# raising it, and raise it from a frame that holds nothing but the (sealed) request and the
# answer: the secrets an answer carries (a token, a secret key) never sit in the locals of a
# frame an error's traceback keeps.


async def issue_token(
    sender: Sender, endpoint: Endpoint, body: Sealed[Any], *, now: datetime
) -> IssuedToken:
    """``POST {iam}/v3/auth/tokens?nocatalog=true``: the token of a 201's ``X-Subject-Token``."""
    response = await sender.request(
        endpoint, "POST", TOKENS_PATH, params={"nocatalog": "true"}, json_body=body
    )
    issued = _read_token(response, now)
    if isinstance(issued, ResponseError):
        raise issued
    return issued


def _read_token(response: Response, now: datetime) -> IssuedToken | ResponseError:
    if _secret_text(response.headers.get("x-subject-token")) is None:
        return ResponseError("IAM answered without a usable X-Subject-Token", vendor=IAM_VENDOR)
    data = _json(response)
    if isinstance(data, ResponseError):
        return data
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, dict):
        return ResponseError("IAM's token answer has no token object", vendor=IAM_VENDOR)
    lifetime = _lifetime(token.get("expires_at"), token.get("issued_at"), now, "a token")
    if isinstance(lifetime, ResponseError):
        return lifetime
    project = token.get("project")
    project_id = project.get("id") if isinstance(project, dict) else None
    return IssuedToken(
        value=_secret_text(response.headers.get("x-subject-token")) or "",  # checked above
        received_at=now,
        lifetime=lifetime,
        project_id=project_id if isinstance(project_id, str) and project_id else None,
    )


def _json(response: Response) -> Any:
    """The answer's JSON, or its ``ResponseError`` returned."""
    try:
        return response.json()
    except ResponseError as exc:
        error = exc
    return error


async def mint_keys(
    sender: Sender,
    endpoint: Endpoint,
    token: Sealed[str],
    duration_seconds: int,
    *,
    now: datetime,
) -> IssuedKeys:
    """``POST {iam}/v3.0/OS-CREDENTIAL/securitytokens``: temporary keys minted from ``token``."""
    body = Sealed(security_token_body(token.value, duration_seconds))
    response = await sender.request(endpoint, "POST", SECURITY_TOKENS_PATH, json_body=body)
    issued = _read_keys(response, now)
    if isinstance(issued, ResponseError):
        raise issued
    return issued


def _read_keys(response: Response, now: datetime) -> IssuedKeys | ResponseError:
    data = _json(response)
    if isinstance(data, ResponseError):
        return data
    credential = data.get("credential") if isinstance(data, dict) else None
    if not isinstance(credential, dict):
        return ResponseError("IAM's answer has no credential object", vendor=IAM_VENDOR)
    ak, sk, security_token = (
        _secret_text(credential.get(key)) for key in ("access", "secret", "securitytoken")
    )
    if ak is None or sk is None or security_token is None:
        return ResponseError(
            "IAM's credential lacks access, secret or securitytoken", vendor=IAM_VENDOR
        )
    lifetime = _lifetime(credential.get("expires_at"), None, now, "temporary keys")
    if isinstance(lifetime, ResponseError):
        return lifetime
    return IssuedKeys(
        ak=ak, sk=sk, security_token=security_token, received_at=now, lifetime=lifetime
    )


async def find_project(sender: Sender, endpoint: Endpoint, region: str) -> str:
    """``GET {iam}/v3/projects?name={region}``: the ID of the region's project, as the SDK
    finds it when none is configured; exactly one must match."""
    response = await sender.request(endpoint, "GET", PROJECTS_PATH, params={"name": region})
    data = response.json()
    projects = data.get("projects") if isinstance(data, dict) else None
    ids: list[str] = [
        item["id"]
        for item in (projects if isinstance(projects, list) else [])
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"]
    ]
    if len(ids) != 1 or has_control(ids[0]):
        raise ResponseError(
            f"IAM lists {len(ids)} projects named {region!r}: give the project ID "
            "(project_id=, or HUAWEICLOUD_SDK_PROJECT_ID)",
            vendor=IAM_VENDOR,
        )
    return ids[0]
