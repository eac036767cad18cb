"""Huawei credentials that come from IAM (see :mod:`pipestatus.auth.huawei`): a password
token, an agency's token and temporary AK/SK minted from a token, each cached per IAM endpoint
and renewed by its margin (:mod:`pipestatus.auth._cache`)."""

from __future__ import annotations

import abc
from datetime import datetime, timedelta

from pipestatus._sansio import Request, Sealed, Sender, check_base_url
from pipestatus.auth._aksk import (
    AKSKSigner,
    Binding,
    Clock,
    HuaweiCredentials,
    Keys,
    optional_arg,
    secret_arg,
    utc_now,
)
from pipestatus.auth._base import Auth
from pipestatus.auth._cache import Renewing, keys_margin, token_margin
from pipestatus.auth._iam import (
    IAM_VENDOR,
    Hiding,
    IssuedKeys,
    IssuedToken,
    assume_role_body,
    check_duration,
    iam_endpoint,
    iam_url,
    issue_token,
    mint_keys,
    password_body,
)
from pipestatus.errors import AuthError

__all__ = ["HuaweiAgency", "HuaweiIAM", "HuaweiTemporaryAKSK", "IAMTokenAuth"]


# --- IAM tokens -------------------------------------------------------------------------------


class IAMTokenAuth(Auth):
    """Sends an IAM token in the vendor's header: fetched before the first attempt, renewed
    before it expires and after a 401 (the auth a bound :class:`HuaweiIAM` is)."""

    __slots__ = ("_tokens", "header")

    def __init__(self, tokens: Renewing[IssuedToken], header: str) -> None:
        self._tokens = tokens
        self.header = header

    async def prepare(self, sender: Sender) -> None:
        await self._tokens.get(sender)

    async def apply(self, request: Request, sender: Sender) -> Request:
        token = await self._tokens.get(sender)
        return request.with_headers({self.header: token.value})

    async def refresh(self, rejected: Request, sender: Sender) -> bool:
        await self._tokens.renew(Sealed(rejected.headers.get(self.header)), sender)
        return True

    def hide(self, text: str) -> str:
        return self._tokens.hide(text)

    def __repr__(self) -> str:
        return f"IAMTokenAuth(header={self.header!r}, token=<hidden>)"


class _TokenCredentials(HuaweiCredentials):
    """Credentials that are a token from IAM: cached per IAM endpoint, renewed by margin."""

    __slots__ = ("_caches", "_clock", "_iam_url", "_margin", "project")

    def __init__(
        self,
        *,
        project: str,
        iam_url: str | None,
        clock: Clock | None,
        refresh_margin: float | None,
    ) -> None:
        self.project = secret_arg(project, "project")
        if iam_url is not None:
            iam_url = check_base_url(iam_url)
        self._iam_url = iam_url
        self._clock = clock or utc_now
        if refresh_margin is not None and not refresh_margin >= 0:
            raise ValueError("refresh_margin must be >= 0 seconds")
        self._margin = refresh_margin
        self._caches: dict[tuple[str, str], Renewing[IssuedToken]] = {}

    def _token_margin(self, lifetime: timedelta) -> timedelta:
        if self._margin is None:
            return token_margin(lifetime)
        return min(timedelta(seconds=self._margin), lifetime / 2)

    def iam_url_for(self, binding: Binding) -> str:
        """The IAM endpoint this binding's tokens come from."""
        return iam_url(self._iam_url, binding.region, project=self.project)

    def tokens(self, binding: Binding) -> Renewing[IssuedToken]:
        """The token cache of this binding's IAM endpoint (shared by every adapter there)."""
        url = self.iam_url_for(binding)
        key = (url, binding.token_header)
        cache = self._caches.get(key)
        if cache is None:

            async def fetch(sender: Sender, now: datetime) -> IssuedToken:
                return await self._issue(sender, now, url, binding)

            cache = self._caches[key] = Renewing(
                fetch, clock=self._clock, margin=self._token_margin
            )
        return cache

    @abc.abstractmethod
    async def _issue(
        self, sender: Sender, now: datetime, url: str, binding: Binding
    ) -> IssuedToken: ...

    def bind(self, binding: Binding) -> Auth:
        return IAMTokenAuth(self.tokens(binding), binding.token_header)

    def temporary_aksk(
        self, duration_seconds: int = 3600, *, project_id: str | None = None
    ) -> HuaweiTemporaryAKSK:
        """Temporary AK/SK and a security token minted from this token (15 min to 24 h), used
        to sign requests; renewed when the SDK's 40 minutes are left."""
        return HuaweiTemporaryAKSK(self, duration_seconds=duration_seconds, project_id=project_id)

    def assume(
        self,
        agency: str,
        *,
        domain: str | None = None,
        domain_id: str | None = None,
        project: str | None = None,
        duration_seconds: int | None = None,
    ) -> HuaweiAgency:
        """The token of an agency (assume-role) of the account ``domain`` (or ``domain_id``),
        asked with this token and scoped to ``project`` (default: this token's project)."""
        return HuaweiAgency(
            self,
            agency,
            domain=domain,
            domain_id=domain_id,
            project=project or self.project,
            duration_seconds=duration_seconds,
        )


class HuaweiIAM(_TokenCredentials):
    """An IAM user's password token, scoped to the project ``project`` (a region name such as
    ``cn-north-4``), from ``POST {iam}/v3/auth/tokens?nocatalog=true``.

    The IAM endpoint is ``iam_url``, else ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, else the region's
    (the adapter's, or the project's), else the global one. The token is renewed when
    ``refresh_margin`` seconds are left (default ``max(1 h, 5 %)`` of its lifetime, at most
    half of it), with one request in flight however many wait, and once more after a 401.
    ``clock`` (aware UTC ``datetime``) times the renewals; tests move it.
    """

    __slots__ = ("_password", "domain", "user")

    def __init__(
        self,
        user: str,
        password: str,
        domain: str,
        project: str,
        iam_url: str | None = None,
        *,
        clock: Clock | None = None,
        refresh_margin: float | None = None,
    ) -> None:
        super().__init__(
            project=project, iam_url=iam_url, clock=clock, refresh_margin=refresh_margin
        )
        self.user = secret_arg(user, "user")
        self.domain = secret_arg(domain, "domain")
        self._password = secret_arg(password, "password")

    async def _issue(
        self, sender: Sender, now: datetime, url: str, binding: Binding
    ) -> IssuedToken:
        endpoint = iam_endpoint(url, Hiding(lambda: (self._password,)))
        body = Sealed(password_body(self.user, self._password, self.domain, self.project))
        refused: AuthError | None = None
        try:
            return await issue_token(sender, endpoint, body, now=now)
        except AuthError as exc:
            refused = exc
        # Raised after the except block: no context, so nothing of the request (its body
        # holds the password) travels with the error.
        raise AuthError(
            status=refused.status,
            vendor=IAM_VENDOR,
            code=refused.code,
            message=f"IAM refused the password of user {self.user!r} in domain "
            f"{self.domain!r}: check the user, the domain and the password"
            + (f" ({refused.message})" if refused.message else ""),
        )

    def __repr__(self) -> str:
        return (
            f"HuaweiIAM(user={self.user!r}, domain={self.domain!r}, project={self.project!r}, "
            f"iam_url={self._iam_url!r}, password=<hidden>)"
        )


class HuaweiAgency(_TokenCredentials):
    """An agency's token (assume-role): asked of IAM with the token of ``base``, for the
    agency ``agency`` of the account ``domain`` (or ``domain_id``), scoped to ``project``,
    living ``duration_seconds`` (IAM's default when ``None``). Made by
    :meth:`HuaweiIAM.assume`; renewed like any token."""

    __slots__ = ("_base", "agency", "domain", "domain_id", "duration_seconds")

    def __init__(
        self,
        base: _TokenCredentials,
        agency: str,
        *,
        domain: str | None = None,
        domain_id: str | None = None,
        project: str,
        duration_seconds: int | None = None,
    ) -> None:
        super().__init__(
            project=project, iam_url=base._iam_url, clock=base._clock, refresh_margin=base._margin
        )
        if (domain is None) == (domain_id is None):
            raise ValueError("give exactly one of domain and domain_id")
        self._base = base
        self.agency = secret_arg(agency, "agency")
        self.domain = optional_arg(domain, "domain")
        self.domain_id = optional_arg(domain_id, "domain_id")
        self.duration_seconds = (
            None if duration_seconds is None else check_duration(duration_seconds)
        )

    async def _issue(
        self, sender: Sender, now: datetime, url: str, binding: Binding
    ) -> IssuedToken:
        # The user's own token goes in the header of this request, through its own auth.
        endpoint = iam_endpoint(url, Hiding(lambda: (), self._base.bind(binding)))
        body = assume_role_body(
            self.agency,
            domain_name=self.domain,
            domain_id=self.domain_id,
            project=self.project,
            duration_seconds=self.duration_seconds,
        )
        return await issue_token(sender, endpoint, Sealed(body), now=now)

    def __repr__(self) -> str:
        return (
            f"HuaweiAgency(agency={self.agency!r}, domain={self.domain!r}, "
            f"domain_id={self.domain_id!r}, project={self.project!r}, base={self._base!r})"
        )


# --- temporary AK/SK minted from a token --------------------------------------------------------


class _MintedKeys:
    """Temporary keys minted from a token, renewed by the SDK's threshold and after a 401."""

    __slots__ = ("_keys", "_tokens")

    def __init__(self, keys: Renewing[IssuedKeys], tokens: Renewing[IssuedToken]) -> None:
        self._keys = keys
        self._tokens = tokens

    async def keys(self, sender: Sender) -> Keys:
        issued = await self._keys.get(sender)
        token = self._tokens.current
        return Keys(
            ak=issued.ak,
            sk=issued.sk,
            security_token=issued.security_token,
            project_id=token.project_id if token is not None else None,
        )

    async def renew(self, ak: str | None, sender: Sender) -> bool:
        await self._keys.renew(Sealed(ak), sender)
        return True

    def hide(self, text: str) -> str:
        return self._tokens.hide(self._keys.hide(text))


class HuaweiTemporaryAKSK(HuaweiCredentials):
    """Temporary AK/SK and a security token minted from the token of ``source``
    (``POST {iam}/v3.0/OS-CREDENTIAL/securitytokens``), living ``duration_seconds`` (15 min to
    24 h), and used like :class:`HuaweiAKSK`. Renewed when less than the SDK's 40 minutes are
    left (at most half their lifetime) and after a 401. ``X-Project-Id`` is ``project_id``,
    else the adapter's, else the project the token is scoped to. Made by
    :meth:`HuaweiIAM.temporary_aksk`."""

    __slots__ = ("_caches", "_source", "duration_seconds", "project_id")

    def __init__(
        self,
        source: _TokenCredentials,
        *,
        duration_seconds: int = 3600,
        project_id: str | None = None,
    ) -> None:
        self._source = source
        self.duration_seconds = check_duration(duration_seconds)
        self.project_id = optional_arg(project_id, "project_id")
        self._caches: dict[tuple[str, str], Renewing[IssuedKeys]] = {}

    def bind(self, binding: Binding) -> Auth:
        tokens = self._source.tokens(binding)
        key = (self._source.iam_url_for(binding), binding.token_header)
        keys = self._caches.get(key)
        if keys is None:
            url = key[0]

            async def mint(sender: Sender, now: datetime) -> IssuedKeys:
                token = await tokens.get(sender)
                endpoint = iam_endpoint(url, Hiding(lambda: (token.value,)))
                refused = False
                try:
                    return await mint_keys(
                        sender, endpoint, Sealed(token.value), self.duration_seconds, now=now
                    )
                except AuthError:
                    refused = True  # the token was refused: renew it and mint once more
                if refused:
                    token = await tokens.renew(Sealed(token.value), sender)
                duration = self.duration_seconds
                return await mint_keys(sender, endpoint, Sealed(token.value), duration, now=now)

            keys = self._caches[key] = Renewing(mint, clock=self._source._clock, margin=keys_margin)
        return AKSKSigner(
            _MintedKeys(keys, tokens),
            project_id=self.project_id or binding.project_id,
            clock=self._source._clock,
        )

    def __repr__(self) -> str:
        return (
            f"HuaweiTemporaryAKSK(duration_seconds={self.duration_seconds}, "
            f"project_id={self.project_id!r}, source={self._source!r})"
        )
