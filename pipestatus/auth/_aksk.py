"""Huawei AK/SK credentials and the signer they bind to (see :mod:`pipestatus.auth.huawei`):
the credentials' base class and :class:`Binding`, and :class:`AKSKSigner`, which signs every
attempt with SDK-HMAC-SHA256 once its headers are final."""

from __future__ import annotations

import abc
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final, Protocol

import attrs

from pipestatus._sansio import Request, Sender, check_base_url, has_control
from pipestatus.auth._base import HIDDEN, Auth
from pipestatus.auth._cache import Once
from pipestatus.auth._iam import find_project, iam_endpoint, iam_url
from pipestatus.auth._sign import parse_authorization, sign

__all__ = [
    "ENV_AK",
    "ENV_PROJECT_ID",
    "ENV_SECURITY_TOKEN",
    "ENV_SK",
    "AKSKSigner",
    "Binding",
    "Clock",
    "HuaweiAKSK",
    "HuaweiCredentials",
    "KeySource",
    "Keys",
    "ProjectLookup",
    "optional_arg",
    "secret_arg",
    "utc_now",
]

#: The official SDK's variable names.
ENV_AK: Final = "HUAWEICLOUD_SDK_AK"
ENV_SK: Final = "HUAWEICLOUD_SDK_SK"
ENV_PROJECT_ID: Final = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_SECURITY_TOKEN: Final = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105 - a variable name

#: Now, as an aware UTC ``datetime`` (tests pass their own).
Clock = Callable[[], datetime]
#: The project ID of the adapter's region, found once (see :meth:`HuaweiAKSK.bind`).
ProjectLookup = Callable[[Sender], Awaitable[str]]


def utc_now() -> datetime:
    return datetime.now(UTC)


def secret_arg(value: object, name: str) -> str:
    """A string argument (a secret, or a name that sits beside one), checked without ever
    repeating it."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    if has_control(value):
        raise ValueError(f"{name} must not contain control characters (CR, LF, ...)")
    return value.strip()


def optional_arg(value: object, name: str) -> str | None:
    return None if value is None else secret_arg(value, name)


def _masked(ak: str) -> str:
    """An access key ID as a repr shows it: its first four characters."""
    return f"{ak[:4]}…" if len(ak) > 8 else "<hidden>"


@attrs.frozen(kw_only=True)
class Binding:
    """What an adapter tells the credentials it is given."""

    #: The header the vendor (and IAM) takes a token in.
    token_header: str
    #: The adapter's region, when it was made from one (it picks the IAM endpoint).
    region: str | None = None
    #: The account's project ID (v5's), sent as ``X-Project-Id`` when the credentials name none.
    project_id: str | None = None


class HuaweiCredentials(abc.ABC):
    """Credentials a Huawei factory accepts (``credentials=``); see the module docstring."""

    __slots__ = ()

    @abc.abstractmethod
    def bind(self, binding: Binding) -> Auth:
        """The auth of one adapter."""


# --- AK/SK signing --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Keys:
    """What one signature needs."""

    ak: str
    sk: str = attrs.field(repr=False)
    security_token: str | None = attrs.field(default=None, repr=False)
    project_id: str | None = None


class KeySource(Protocol):
    """Where a signer's keys come from: fixed, or minted and renewed."""

    async def keys(self, sender: Sender) -> Keys: ...

    async def renew(self, ak: str | None, sender: Sender) -> bool: ...

    def hide(self, text: str) -> str: ...


class AKSKSigner(Auth):
    """Signs each attempt with SDK-HMAC-SHA256 (the auth a bound :class:`HuaweiAKSK` or
    :class:`HuaweiTemporaryAKSK` is). ``X-Project-Id`` is ``project_id``, else the keys' own,
    else what ``find_project`` finds (once), else none."""

    __slots__ = ("_clock", "_find_project", "_project_id", "_source")

    def __init__(
        self,
        source: KeySource,
        *,
        project_id: str | None,
        clock: Clock,
        find_project: ProjectLookup | None = None,
    ) -> None:
        self._source = source
        self._project_id = project_id
        self._clock = clock
        self._find_project = find_project

    @property
    def project_id(self) -> str | None:
        """The ``X-Project-Id`` this signer was given (``None``: the keys' or the region's)."""
        return self._project_id

    async def _project(self, keys: Keys, sender: Sender) -> str | None:
        if self._project_id or keys.project_id:
            return self._project_id or keys.project_id
        if self._find_project is not None:
            return await self._find_project(sender)
        return None

    async def prepare(self, sender: Sender) -> None:
        await self._project(await self._source.keys(sender), sender)

    async def apply(self, request: Request, sender: Sender) -> Request:
        if any(name.lower() == "authorization" for name in request.headers):
            return request  # signed already: the SDK does not sign twice
        keys = await self._source.keys(sender)
        headers = dict(request.headers)
        project_id = await self._project(keys, sender)
        if project_id:
            headers["X-Project-Id"] = project_id
        if keys.security_token:
            headers["X-Security-Token"] = keys.security_token
        signed = sign(
            method=request.method,
            url=request.url,
            query=request.query,
            headers=headers,
            body=request.body,
            ak=keys.ak,
            sk=keys.sk,
            now=self._clock(),
        )
        return attrs.evolve(request, headers=signed.headers, query=signed.query)

    async def refresh(self, rejected: Request, sender: Sender) -> bool:
        header = next((v for k, v in rejected.headers.items() if k.lower() == "authorization"), "")
        parts = parse_authorization(header)
        return await self._source.renew(parts.ak if parts else None, sender)

    def hide(self, text: str) -> str:
        return self._source.hide(text)

    def __repr__(self) -> str:
        return f"AKSKSigner(project_id={self._project_id!r}, keys=<hidden>)"


class _FixedKeys:
    """Permanent keys (or temporary ones the caller renews): nothing to fetch, nothing to
    renew after a 401."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    async def keys(self, sender: Sender) -> Keys:
        return self._keys

    async def renew(self, ak: str | None, sender: Sender) -> bool:
        return False

    def hide(self, text: str) -> str:
        for secret in (self._keys.sk, self._keys.security_token):
            if secret and secret in text:
                text = text.replace(secret, HIDDEN)
        return text


class HuaweiAKSK(HuaweiCredentials):
    """An access key (AK) and secret key (SK): every request signed as the official SDK
    signs it. ``project_id`` goes out as ``X-Project-Id``; without one, a v5 adapter sends its
    own project, and an adapter made with ``region=`` asks IAM for that region's project once
    (``GET {iam}/v3/projects?name={region}``, signed; IAM is ``iam_url``, else
    ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, else the region's), as the SDK does. ``security_token``
    makes them temporary keys (``X-Security-Token``, signed). ``clock`` (aware UTC
    ``datetime``) dates the signatures; tests move it."""

    __slots__ = ("_ak", "_clock", "_iam_url", "_projects", "_security_token", "_sk", "project_id")

    def __init__(
        self,
        ak: str,
        sk: str,
        project_id: str | None = None,
        security_token: str | None = None,
        *,
        iam_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._ak = secret_arg(ak, "ak")
        if any(char in self._ak for char in ", ;="):
            raise ValueError("ak must not contain ',', ';', '=' or spaces")
        self._sk = secret_arg(sk, "sk")
        self.project_id = optional_arg(project_id, "project_id")
        self._security_token = optional_arg(security_token, "security_token")
        self._iam_url = None if iam_url is None else check_base_url(iam_url)
        self._clock = clock or utc_now
        self._projects: dict[tuple[str, str], Once[str]] = {}

    @property
    def ak(self) -> str:
        """The access key ID (not a secret: every signed request names it)."""
        return self._ak

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, clock: Clock | None = None
    ) -> HuaweiAKSK:
        """The keys in the official SDK's variables: ``HUAWEICLOUD_SDK_AK``, ``_SK``, and the
        optional ``_PROJECT_ID`` and ``_SECURITY_TOKEN``."""
        env = os.environ if environ is None else environ
        missing = [name for name in (ENV_AK, ENV_SK) if not env.get(name, "").strip()]
        if missing:
            raise ValueError(f"{' and '.join(missing)} must be set (the Huawei SDK's variables)")
        return cls(
            env[ENV_AK],
            env[ENV_SK],
            project_id=env.get(ENV_PROJECT_ID, "").strip() or None,
            security_token=env.get(ENV_SECURITY_TOKEN, "").strip() or None,
            clock=clock,
        )

    def _keys(self) -> Keys:
        return Keys(ak=self._ak, sk=self._sk, security_token=self._security_token)

    def _lookup(self, region: str) -> Once[str]:
        """The project lookup of ``region``, shared by every adapter in it."""
        url = iam_url(self._iam_url, region)
        found = self._projects.get((url, region))
        if found is None:
            signer = AKSKSigner(_FixedKeys(self._keys()), project_id=None, clock=self._clock)
            endpoint = iam_endpoint(url, signer)

            async def fetch(sender: Sender) -> str:
                return await find_project(sender, endpoint, region)

            found = self._projects[(url, region)] = Once(fetch)
        return found

    def bind(self, binding: Binding) -> Auth:
        project_id = self.project_id or binding.project_id
        lookup = None
        if project_id is None and binding.region is not None:
            lookup = self._lookup(binding.region).get
        return AKSKSigner(
            _FixedKeys(self._keys()), project_id=project_id, clock=self._clock, find_project=lookup
        )

    def __repr__(self) -> str:
        token = "<hidden>" if self._security_token else None
        return (
            f"HuaweiAKSK(ak={_masked(self._ak)!r}, sk=<hidden>, project_id={self.project_id!r}, "
            f"security_token={token})"
        )
