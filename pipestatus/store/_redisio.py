"""The one place that talks to Redis: the lazy import of ``redis.asyncio``, one client per
store or stream, Lua scripts by their SHA, and the translation of every redis exception into
pipestatus's error tree (:class:`~pipestatus.errors.StoreUnavailableError` for what passes,
:class:`~pipestatus.errors.StoreError` for what will not), through a table, most specific
first, built inside ``except`` and raised after it so no redis exception rides along in a
``__context__``.

``redis`` is the optional extra ``pipestatus[redis]``: this module imports it only when a
Redis store or stream is made, and says what to install when it is missing. The client never
retries on its own (``retries=0``): the watch retries with its own backoff, and the scripts
are written so that a retry after a lost answer does nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs

from pipestatus.errors import StoreError, StoreUnavailableError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["INSTALL", "Connection", "Refused", "Script", "redis_module", "safe_url"]

logger = logging.getLogger("pipestatus.store")

#: What to run when the redis package is missing.
INSTALL: Final = "pip install 'pipestatus[redis]'"

#: Error replies that pass: the server is loading, busy, read-only for a failover, out of
#: memory for now, or a cluster is moving.
_TRANSIENT: Final = (
    "LOADING",
    "BUSY",
    "READONLY",
    "MASTERDOWN",
    "OOM",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "NOREPLICAS",
)


#: The error replies redis-py turns into classes of their own (and strips the code from).
_CLASS_CODES: Final = (
    ("NoScriptError", "NOSCRIPT"),
    ("ReadOnlyError", "READONLY"),
    ("OutOfMemoryError", "OOM"),
    ("TryAgainError", "TRYAGAIN"),
    ("MasterDownError", "MASTERDOWN"),
    ("ClusterDownError", "CLUSTERDOWN"),
    ("ExecAbortError", "EXECABORT"),
    ("NoPermissionError", "NOPERM"),
)


def _code(exc: BaseException) -> str:
    """The first word of an error reply (``NOGROUP``), whether redis-py kept it in the
    message or made a class of it."""
    exceptions = importlib.import_module("redis.exceptions")
    for name, code in _CLASS_CODES:
        cls = getattr(exceptions, name, None)
        if cls is not None and isinstance(exc, cls):
            return code
    return str(exc).partition(" ")[0]


def redis_module(what: str) -> ModuleType:
    """``redis.asyncio``, or ``ImportError`` saying ``what`` needs and how to install it."""
    try:
        return importlib.import_module("redis.asyncio")
    except ImportError:
        problem = f"{what} needs the redis package: {INSTALL}"
    raise ImportError(problem)


def safe_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise TypeError("a Redis URL is a string")
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"a Redis URL starts with redis://, rediss:// or unix://, got {safe_url(url)!r}"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"a Redis URL with an invalid port: {safe_url(url)!r}") from None
    database = parts.path.strip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise ValueError(f"a Redis URL's database is a number: {safe_url(url)!r}")
    return url


@attrs.frozen
class Refused:
    """An error reply a caller asked to see instead of an exception (``BUSYGROUP``,
    ``NOGROUP``): its first word and the message."""

    code: str
    message: str


@attrs.frozen
class Script:
    """A Lua script, sent by its SHA1 (and loaded again when the server lost it)."""

    source: str
    sha: str = attrs.field(init=False)

    @sha.default
    def _sha(self) -> str:
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


class Connection:
    """One ``redis.asyncio`` client at ``url``, made on first use in the running loop and
    dropped by :meth:`aclose` (a store opened again under another loop makes a new one)."""

    def __init__(self, url: str, *, timeout: float, what: str) -> None:
        self._module = redis_module(what)
        self.url = _check_url(url)  # holds the password, if any: never shown (see ``safe``)
        self.timeout = timeout
        self._client: Redis | None = None
        self._password = urlsplit(url).password
        self._abandoned: set[asyncio.Future[Any]] = set()

    @property
    def safe(self) -> str:
        """The URL without its password, for messages."""
        return safe_url(self.url)

    @property
    def server(self) -> str:
        """Which server (and database) this is, without credentials: two connections with the
        same ``server`` share transactions."""
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        database = parts.path.strip("/") or "0"
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{database}"

    def _client_now(self) -> Redis:
        if self._client is None:
            retry_module = importlib.import_module("redis.asyncio.retry")
            backoff_module = importlib.import_module("redis.backoff")
            self._client = self._module.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=retry_module.Retry(backoff_module.NoBackoff(), 0),
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except (OSError, self._module.RedisError) as exc:  # closing a dead link: done anyway
                logger.debug("redis at %s: closing: %s", self.safe, type(exc).__name__)
        abandoned, self._abandoned = self._abandoned, set()
        for task in abandoned:
            task.cancel()
        if abandoned:  # their connections are closed now: they end at once
            await asyncio.wait(abandoned, timeout=self.timeout)

    async def call(self, *args: Any, refused: Sequence[str] = ()) -> Any:
        """One command; an error reply whose first word is in ``refused`` comes back as a
        :class:`Refused` value, every other failure as one of our errors.

        The command runs as a task of its own: redis-py can swallow a cancellation that lands
        in a blocking read (``XREADGROUP ... BLOCK``) and read on, so the caller's cancellation
        must not depend on it. A cancelled caller leaves the command behind (it ends with its
        reply, or when :meth:`aclose` closes its connection).
        """
        client = self._client_now()
        command = asyncio.ensure_future(client.execute_command(*args))  # type: ignore[no-untyped-call]
        try:
            return await asyncio.shield(command)
        except asyncio.CancelledError:
            if not command.done():
                command.cancel()
                self._abandoned.add(command)
                command.add_done_callback(self._settled)
            raise
        except self._module.ResponseError as exc:
            code = _code(exc)
            if code in refused:
                return Refused(code, str(exc))
            error = self._translate(exc)
        except (TimeoutError, self._module.RedisError, OSError) as exc:
            error = self._translate(exc)
        raise error

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[object]) -> Any:
        """Run ``script`` (EVALSHA; loaded again after the server forgot it)."""
        reply = await self.call(
            "EVALSHA", script.sha, len(keys), *keys, *args, refused=("NOSCRIPT",)
        )
        if isinstance(reply, Refused):
            await self.call("SCRIPT", "LOAD", script.source)
            reply = await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        return reply

    def _settled(self, command: asyncio.Future[Any]) -> None:
        """An abandoned command ended: take its outcome (nobody else will)."""
        self._abandoned.discard(command)
        if not command.cancelled():
            command.exception()

    def _translate(self, exc: BaseException) -> StoreError:
        """The table: each redis failure as ours, the message naming the server only."""
        exceptions = importlib.import_module("redis.exceptions")
        text = str(exc)
        if self._password:
            text = text.replace(self._password, "***")
        where = f"redis at {self.safe}"
        if isinstance(exc, exceptions.AuthenticationError | exceptions.AuthorizationError):
            return StoreError(f"{where}: refused the credentials ({text})")
        if isinstance(exc, exceptions.BusyLoadingError):
            return StoreUnavailableError(f"{where}: loading its data")
        if isinstance(exc, exceptions.TimeoutError | TimeoutError):
            return StoreUnavailableError(f"{where}: timed out after {self.timeout:g} s")
        if isinstance(exc, exceptions.ConnectionError | OSError):
            return StoreUnavailableError(f"{where}: unreachable ({text or type(exc).__name__})")
        if isinstance(exc, exceptions.ResponseError):
            code = _code(exc)
            if code in _TRANSIENT:
                return StoreUnavailableError(f"{where}: {text}")
            if code == "WRONGTYPE":
                return StoreError(f"{where}: a key holds data of another kind ({text})")
            return StoreError(f"{where}: {text}")
        return StoreError(f"{where}: {type(exc).__name__}: {text}")
