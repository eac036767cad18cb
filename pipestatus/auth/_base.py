"""Credentials as objects the transport consults on every attempt.

An :class:`Auth` sees each attempt's request once every other header of it is final (conditional
headers included) and returns it with its credentials added. So a static token is one header, a
token provider refreshes itself (one fetch in flight, however many requests wait), and a signer
signs exactly what is sent, afresh on every retry and every redirect hop. Before each attempt,
outside the concurrency limits, :meth:`Auth.prepare` lets credentials that need a request of
their own (an IAM token) fetch it. After a 401 the transport asks :meth:`Auth.refresh` whether
fresh credentials are worth one more attempt.

Secrets live only in these objects: their ``repr`` says which kind they are and hides the value,
:meth:`Auth.hide` hides them in any text a vendor echoes back, and no error they raise carries
the provider's own exception (which may name the secret).
"""

from __future__ import annotations

import abc
import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Final

from pipestatus._sansio import Request, Sender, has_control
from pipestatus.errors import PipestatusError

__all__ = ["Auth", "HeaderToken", "ProvidedToken", "TokenProvider", "token_auth"]

#: An async callable returning a fresh token (for tokens that expire).
TokenProvider = Callable[[], Awaitable[str]]

HIDDEN: Final = "<hidden>"


class Auth(abc.ABC):
    """Credentials for one origin; see the module docstring."""

    __slots__ = ()

    @abc.abstractmethod
    async def apply(self, request: Request, sender: Sender) -> Request:
        """``request`` with credentials added. Called once per attempt and per redirect hop,
        only for the configured origin, after every other header is final. ``sender`` is the
        client's transport: its ``timeout`` bounds any fetch, and it carries any request the
        credentials need of their own (an IAM token, say)."""

    async def prepare(self, sender: Sender) -> None:  # noqa: B027 - optional: most need nothing
        """Before each attempt, outside the transport's concurrency limits: have the
        credentials ready (fetch or renew a token through ``sender``). A fetch made here never
        waits for a slot held by a request that waits for this very fetch, as one made in
        :meth:`apply` could; ``apply`` then finds them ready."""

    async def refresh(self, rejected: Request, sender: Sender) -> bool:
        """After a 401 to ``rejected``: True when fresh credentials are in place and the
        request deserves one more attempt (not counted as a retry)."""
        return False

    def hide(self, text: str) -> str:
        """``text`` with every secret of this auth replaced by ``<hidden>``."""
        return text


def _check_token(token: str) -> None:
    if not token.strip():
        raise ValueError("token must not be empty")
    if has_control(token):
        raise ValueError("token must not contain control characters (CR, LF, ...)")


class HeaderToken(Auth):
    """A static token sent in one header."""

    __slots__ = ("_token", "header")

    def __init__(self, header: str, token: str) -> None:
        _check_token(token)
        self.header = header
        self._token = token

    async def apply(self, request: Request, sender: Sender) -> Request:
        return request.with_headers({self.header: self._token})

    def hide(self, text: str) -> str:
        return text.replace(self._token, HIDDEN) if self._token in text else text

    def __repr__(self) -> str:
        return f"HeaderToken(header={self.header!r}, token=<static, hidden>)"


class _LoopLock:
    """An ``asyncio.Lock`` per event loop: a client may be used under one ``asyncio.run`` and
    then another, and a lock binds to the loop of its first contended use."""

    __slots__ = ("_lock", "_loop")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None

    def get(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._loop is None or self._loop() is not loop:
            self._lock = asyncio.Lock()
            self._loop = weakref.ref(loop)
        return self._lock


class ProvidedToken(Auth):
    """A token from an async provider, sent in one header: fetched once, reused, and fetched
    afresh after a 401. One fetch is in flight at a time, and each is bounded by the client's
    timeout (a provider that never answers costs one timeout, not a hung poll)."""

    __slots__ = ("_lock", "_provider", "_seen", "_token", "header")

    def __init__(self, header: str, provider: TokenProvider) -> None:
        self.header = header
        self._provider = provider
        self._token: str | None = None
        self._seen: list[str] = []  # recent tokens, hidden in vendor text too
        self._lock = _LoopLock()

    async def apply(self, request: Request, sender: Sender) -> Request:
        token = self._token
        if token is None:
            async with self._lock.get():
                if self._token is None:
                    self._token = await self._fetch(sender.timeout)
                token = self._token
        return request.with_headers({self.header: token})

    async def refresh(self, rejected: Request, sender: Sender) -> bool:
        async with self._lock.get():
            # (the rejected token is compared, never held in a local: a traceback of a failed
            # fetch below keeps this frame's locals)
            if self._token is None or self._token == rejected.headers.get(self.header):
                self._token = await self._fetch(sender.timeout)
        return True

    async def _fetch(self, seconds: float) -> str:
        problem: str | None = None
        token: object = None
        try:
            async with asyncio.timeout(seconds):
                token = await self._provider()
        except TimeoutError:
            problem = f"did not answer within {seconds:g} s"
        except Exception as exc:  # noqa: BLE001 - the provider is user code; say it failed
            problem = f"failed: {type(exc).__name__}"
        # Raised here, after the except blocks, so the error carries no context of the
        # provider's (whose exception or frames may name the token).
        if problem is None:
            if not isinstance(token, str) or not token.strip():
                problem = "returned no token"
            elif has_control(token):
                problem = "returned control characters"
        if problem is not None:
            token = None  # no traceback frame keeps what the provider returned
            raise PipestatusError(f"the token provider for {self.header} {problem}") from None
        assert isinstance(token, str)
        self._seen = [*self._seen[-3:], token]
        return token

    def hide(self, text: str) -> str:
        for token in self._seen:
            if token in text:
                text = text.replace(token, HIDDEN)
        return text

    def __repr__(self) -> str:
        return f"ProvidedToken(header={self.header!r}, token=<provider, hidden>)"


def token_auth(header: str, token: str | TokenProvider) -> Auth:
    """The auth for ``token=``: a string, or an async callable for tokens that expire."""
    if isinstance(token, str):
        return HeaderToken(header, token)
    if callable(token):
        return ProvidedToken(header, token)
    raise TypeError(f"token must be a string or an async callable, not {type(token)!r}")
