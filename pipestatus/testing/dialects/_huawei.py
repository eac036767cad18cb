"""The Huawei Cloud both Huawei dialects sit behind: the API gateway's credential check and IAM.

One :class:`HuaweiCloud` per server (shared through the dialects' :class:`Context`) holds:

* the credentials the gateway accepts on the CodeArts routes: the server's token in
  ``X-Auth-Token``, an IAM token it issued and that has not expired, or an SDK-HMAC-SHA256
  signature by a known access key, checked exactly (recomputed from the request as received:
  method, raw path, query, the signed headers, the body's hash) with its ``X-Sdk-Date`` within
  15 minutes of the cloud's clock and, for temporary keys, the right ``X-Security-Token``.
  A refusal is the gateway's 401 ``APIGW.0301``. Stricter than the gateway on one point: the
  query must arrive in canonical form, so a test proves that what is sent is what was signed;
* IAM: ``POST /v3/auth/tokens`` (password and assume-role tokens: a 201 with the token in
  ``X-Subject-Token`` and its ``expires_at``, ``token_lifetime`` seconds from now),
  ``POST /v3.0/OS-CREDENTIAL/securitytokens`` (temporary AK/SK and a security token minted
  from a token, living ``keys_lifetime`` seconds or the duration asked) and
  ``GET /v3/projects?name=`` (a region's project, for signed requests; the project ID is the
  same as in the tokens scoped to that name);
* a clock (:meth:`HuaweiCloud.now`) that tests move with :meth:`HuaweiCloud.advance` and give
  to the client's credentials, so lifetimes pass without sleeping.

Known from the start: the demo accounts of the Huawei vendor specs (``spec.demo.credentials``):
an access key whose SK is the server's token, and an IAM user whose password is the server's
token. The IAM routes are the dialects' shared ``services``, served once at the server's origin
(and recorded under the first Huawei dialect's key).
"""

from __future__ import annotations

import abc
import json
import secrets
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
from aiohttp import web

from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.auth._sign import (
    canonical_query,
    canonical_request,
    parse_authorization,
    parse_date,
    payload_hash,
    query_pairs,
    signature,
    string_to_sign,
)
from pipestatus.testing._answers import Answer
from pipestatus.testing._sim import stable_hex
from pipestatus.testing.dialects._base import Context, Dialect, Host, Route
from pipestatus.vendors import REGISTRY

__all__ = ["HuaweiCloud", "HuaweiHost", "cloud_of"]

#: The Huawei vendors, and the header their tokens travel in.
HUAWEI: Final = ("codearts_repo", "codearts_pipeline")
HEADER: Final = REGISTRY[HUAWEI[0]].header
#: The gateway's code for a refused credential.
APIGW_AUTH: Final = "APIGW.0301"
#: How far an ``X-Sdk-Date`` may be from the cloud's clock.
MAX_DATE_SKEW: Final = timedelta(minutes=15)
_EXPIRY_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"

#: The gateway's refusals (``error_msg``); the date and token ones are the simulator's words.
BAD_SIGNATURE: Final = "Incorrect IAM authentication information: verify aksk signature fail"
BAD_DATE: Final = (
    "Incorrect IAM authentication information: X-Sdk-Date expired "
    "(more than 15 minutes from the server's time)"
)
BAD_TOKEN: Final = "Incorrect IAM authentication information: decrypt token fail"
BAD_SECURITY_TOKEN: Final = (
    "Incorrect IAM authentication information: the security token is invalid or expired"
)
NOT_CANONICAL: Final = (
    "Incorrect IAM authentication information: verify aksk signature fail "
    "(the query was not sent in its canonical form)"
)


@attrs.define
class _Key:
    sk: str = attrs.field(repr=False)
    security_token: str | None = attrs.field(default=None, repr=False)
    expires_at: datetime | None = None


@attrs.define
class _Token:
    user: str
    domain: str
    project: str
    expires_at: datetime


def _random(length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _expiry(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_EXPIRY_FORMAT)


def _gateway_refusal(message: str) -> Answer:
    return Answer(
        401,
        {"error_code": APIGW_AUTH, "error_msg": message, "request_id": stable_hex(message)},
    )


def _iam_error(status: int, message: str) -> Answer:
    """Keystone's error shape, as IAM answers it."""
    title = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}[status]
    return Answer(status, {"error": {"code": status, "message": message, "title": title}})


class HuaweiCloud:
    """The gateway's credentials, IAM and the clock of one simulated server; see the module
    docstring."""

    def __init__(self, token: str) -> None:
        self._static = token
        self.keys: dict[str, _Key] = {}
        self.users: dict[tuple[str, str], str] = {}
        self._demo_ak: str | None = None
        # The demo accounts, as the vendor specs make them: their secret is the server's token.
        for key in HUAWEI:
            make = REGISTRY[key].demo.credentials
            demo = make("http://127.0.0.1", token) if make is not None else None
            if isinstance(demo, HuaweiAKSK):
                self.keys[demo.ak] = _Key(sk=token)
                self._demo_ak = demo.ak
            elif isinstance(demo, HuaweiIAM):
                self.users[(demo.domain, demo.user)] = token
        self.agencies: set[tuple[str, str]] = set()
        self.tokens: dict[str, _Token] = {}
        #: Seconds an issued token lives (IAM's 24 h by default); tests shorten it.
        self.token_lifetime = 86_400.0
        #: Seconds minted keys live; ``None``: the duration the request asks for.
        self.keys_lifetime: float | None = None
        #: How many requests the gateway refused (401) for their credentials.
        self.refused = 0
        #: Project names IAM's project list does not know (``GET /v3/projects?name=``).
        self.missing_projects: set[str] = set()
        self._offset = timedelta(0)
        self._routes = (
            Route("POST", "/v3/auth/tokens", self._issue_token),
            Route("POST", "/v3.0/OS-CREDENTIAL/securitytokens", self._mint_keys),
            Route("GET", "/v3/projects", self._projects),
        )

    def __repr__(self) -> str:
        return f"<HuaweiCloud keys={len(self.keys)} users={len(self.users)} secrets=<hidden>>"

    # -- the clock -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The cloud's time (aware UTC): the wall clock, moved by :meth:`advance`."""
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        """Move the cloud's clock forward by ``seconds`` (negative: back)."""
        self._offset += timedelta(seconds=seconds)

    # -- credentials -------------------------------------------------------------------------------

    def add_key(self, ak: str, sk: str) -> None:
        """Accept signatures by ``ak`` with the secret ``sk``."""
        self.keys[ak] = _Key(sk=sk)

    def add_user(self, user: str, password: str, domain: str) -> None:
        """An IAM user of the account ``domain`` that may get tokens with ``password``."""
        self.users[(domain, user)] = password

    def add_agency(self, domain: str, agency: str) -> None:
        """An agency of the account ``domain`` that any user with a token may assume."""
        self.agencies.add((domain, agency))

    @property
    def demo_keys(self) -> tuple[str, str]:
        """The demo account's AK and SK (the server's token)."""
        if self._demo_ak is None:
            raise LookupError("no Huawei vendor spec names a demo AK/SK account")
        return self._demo_ak, self._static

    def check(self, request: web.Request, body: bytes, refusal: Answer) -> Answer | None:
        """``None`` when the request carries credentials the gateway accepts; else the
        gateway's 401 (``refusal``, the dialect's own, for a missing or unknown token).
        Refusals are counted in :attr:`refused`."""
        answer = self._check(request, body, refusal)
        if answer is not None:
            self.refused += 1
        return answer

    def _check(self, request: web.Request, body: bytes, refusal: Answer) -> Answer | None:
        token = request.headers.get(HEADER)
        if token is not None:
            if token == self._static:
                return None
            issued = self.tokens.get(token)
            if issued is None:
                return refusal
            return _gateway_refusal(BAD_TOKEN) if issued.expires_at <= self.now() else None
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return refusal
        return self._check_signature(request, body, authorization)

    def _check_signature(self, request: web.Request, body: bytes, value: str) -> Answer | None:
        parts = parse_authorization(value)
        key = self.keys.get(parts.ak) if parts is not None else None
        if parts is None or key is None or not {"host", "x-sdk-date"} <= set(parts.names):
            return _gateway_refusal(BAD_SIGNATURE)
        headers = {name.lower(): v for name, v in request.headers.items()}
        date = parse_date(headers.get("x-sdk-date", ""))
        if date is None or abs(self.now() - date) > MAX_DATE_SKEW:
            return _gateway_refusal(BAD_DATE)
        if key.security_token is not None and (
            "x-security-token" not in parts.names
            or headers.get("x-security-token") != key.security_token
            or (key.expires_at is not None and key.expires_at <= self.now())
        ):
            return _gateway_refusal(BAD_SECURITY_TOKEN)
        path, _, raw_query = request.raw_path.partition("?")
        query = canonical_query(query_pairs(raw_query))
        if raw_query != query:
            return _gateway_refusal(NOT_CANONICAL)
        canonical = canonical_request(
            request.method, path, query, headers, parts.names, payload_hash(body, headers)
        )
        expected = signature(key.sk, string_to_sign(canonical, headers["x-sdk-date"]))
        if not secrets.compare_digest(expected, parts.signature):
            return _gateway_refusal(BAD_SIGNATURE)
        return None

    # -- IAM ---------------------------------------------------------------------------------------

    def routes(self) -> Sequence[Route]:
        """IAM's routes (the same objects for every dialect, so the server adds them once)."""
        return self._routes

    def _issue(self, user: str, domain: str, project: str) -> Answer:
        now = self.now()
        value = "MII" + _random(96, string.ascii_letters + string.digits)
        expires = now + timedelta(seconds=self.token_lifetime)
        self.tokens[value] = _Token(user=user, domain=domain, project=project, expires_at=expires)
        payload = {
            "token": {
                "expires_at": _expiry(expires),
                "issued_at": _expiry(now),
                "methods": ["password"],
                "project": {"id": stable_hex("project", project), "name": project},
                "user": {"name": user, "domain": {"name": domain}},
                "roles": [{"name": "te_admin"}],
            }
        }
        return Answer(201, payload, {"X-Subject-Token": value})

    def _valid_token(self, value: object) -> _Token | None:
        issued = self.tokens.get(value) if isinstance(value, str) else None
        if issued is None or issued.expires_at <= self.now():
            return None
        return issued

    async def _issue_token(self, request: web.Request, body: bytes) -> Answer:
        auth = _json(body).get("auth")
        identity = auth.get("identity") if isinstance(auth, dict) else None
        scope = auth.get("scope") if isinstance(auth, dict) else None
        project = _dig(scope, "project", "name")
        if not isinstance(identity, dict) or not isinstance(project, str):
            return _iam_error(400, "The request body is invalid.")
        methods = identity.get("methods")
        if methods == ["password"]:
            user = _dig(identity, "password", "user", "name")
            domain = _dig(identity, "password", "user", "domain", "name")
            password = _dig(identity, "password", "user", "password")
            if not (isinstance(user, str) and isinstance(domain, str)):
                return _iam_error(400, "The request body is invalid.")
            known = self.users.get((domain, user))
            if known is None or known != password:
                return _iam_error(401, "The username or password is wrong.")
            return self._issue(user, domain, project)
        if methods == ["assume_role"]:
            caller = self._valid_token(request.headers.get(HEADER))
            if caller is None:
                return _iam_error(401, "The token is invalid or expired.")
            agency = _dig(identity, "assume_role", "agency_name")
            domain = _dig(identity, "assume_role", "domain_name")
            if (domain, agency) not in self.agencies:
                return _iam_error(403, "The agency does not exist or may not be assumed.")
            return self._issue(f"{domain}/{agency}", str(domain), project)
        return _iam_error(400, "The identity method is not supported here.")

    async def _projects(self, request: web.Request, body: bytes) -> Answer:
        refused = self.check(request, body, _iam_error(401, "The request is not authenticated."))
        if refused is not None:
            return refused
        name = request.query.get("name")
        if not name:
            return _iam_error(400, "Give the project's name.")
        if name in self.missing_projects:
            return Answer(200, {"projects": [], "links": {}})
        project = {"id": stable_hex("project", name), "name": name, "enabled": True}
        return Answer(200, {"projects": [project], "links": {}})

    async def _mint_keys(self, request: web.Request, body: bytes) -> Answer:
        identity = _dig(_json(body), "auth", "identity")
        token = _dig(identity, "token", "id")
        duration = _dig(identity, "token", "duration_seconds")
        if _dig(identity, "methods") != ["token"] or not isinstance(duration, int):
            return _iam_error(400, "The request body is invalid.")
        if self._valid_token(token) is None:
            return _iam_error(401, "The token is invalid or expired.")
        if not 900 <= duration <= 86_400:
            return _iam_error(400, "duration_seconds must be in 900..86400.")
        lifetime = self.keys_lifetime if self.keys_lifetime is not None else float(duration)
        expires = self.now() + timedelta(seconds=lifetime)
        ak, sk, security_token = _random(20), _random(40), _random(120, string.ascii_letters)
        self.keys[ak] = _Key(sk=sk, security_token=security_token, expires_at=expires)
        credential = {
            "access": ak,
            "secret": sk,
            "securitytoken": security_token,
            "expires_at": _expiry(expires),
        }
        return Answer(201, {"credential": credential})


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def cloud_of(context: Context) -> HuaweiCloud:
    """The server's one Huawei cloud, made by the first Huawei dialect that asks."""
    cloud = context.shared.get("huawei")
    if not isinstance(cloud, HuaweiCloud):
        cloud = context.shared["huawei"] = HuaweiCloud(context.token)
    return cloud


class HuaweiHost(Host):
    """``VendorServer.huawei`` and ``VendorServer.huawei_env``."""

    __slots__ = ()

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The server's URL."""

    @abc.abstractmethod
    def _dialect(self, vendor: str) -> Dialect: ...

    @property
    def huawei(self) -> HuaweiCloud:
        """The simulated Huawei Cloud: its clock, token lifetimes, users and keys."""
        return cloud_of(self._dialect("codearts_repo").context)

    def huawei_env(self, region: str = "cn-north-4") -> Mapping[str, str]:
        """The environment the official SDK would read for this server: the demo AK/SK in
        ``HUAWEICLOUD_SDK_AK``/``_SK``, IAM (``HUAWEICLOUD_SDK_IAM_ENDPOINT``) and ``region``'s
        endpoint of both CodeArts services overridden to this server."""
        ak, sk = self.huawei.demo_keys
        env = {
            "HUAWEICLOUD_SDK_AK": ak,
            "HUAWEICLOUD_SDK_SK": sk,
            "HUAWEICLOUD_SDK_IAM_ENDPOINT": self.url,
        }
        for key in HUAWEI:
            regions = REGISTRY[key].regions
            if regions is not None:
                env[regions.env_name(region)] = self.url
        return env
