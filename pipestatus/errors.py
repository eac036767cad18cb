"""The errors pipestatus raises. ``PipestatusError`` is the root; nothing else escapes a call
(invalid arguments raise ``ValueError`` before any request is sent)::

    PipestatusError
    ├── TransportError          connection refused or reset, DNS, broken HTTP
    │   └── RequestTimeout      an attempt ran past the client's ``timeout``
    ├── APIError                a non-2xx answer: status, code, message, vendor
    │   ├── AuthError           401
    │   ├── ForbiddenError      403
    │   ├── NotFoundError       404 (and a v5 pipeline the batch answer leaves out)
    │   ├── RateLimitedError    429, with retry_after
    │   └── ServerError         5xx
    ├── ResponseError           a 2xx that cannot be used: bad JSON, wrong shape, over the cap
    ├── WaitTimeout             Client.wait gave up before the run finished
    └── StoreError              a store or stream unusable: corrupt, foreign, in use elsewhere
        └── StoreUnavailableError  unreachable now (Redis down, restarting, too slow): retried

Messages name the vendor, the HTTP status, the vendor's code and message, or the field path
of a bad payload; they never hold a token.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "APIError",
    "AuthError",
    "ForbiddenError",
    "NotFoundError",
    "PipestatusError",
    "RateLimitedError",
    "RequestTimeout",
    "ResponseError",
    "ServerError",
    "StoreError",
    "StoreUnavailableError",
    "TransportError",
    "WaitTimeout",
    "api_error",
]


class PipestatusError(Exception):
    """Root of every error pipestatus raises."""


class TransportError(PipestatusError):
    """The request did not get an HTTP answer: connection refused or reset, DNS, broken HTTP."""


class RequestTimeout(TransportError):
    """One attempt (connect, send, read the whole body) ran past the client's ``timeout``."""


class APIError(PipestatusError):
    """The vendor answered with a non-2xx status."""

    def __init__(
        self,
        *,
        status: int,
        vendor: str,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        self.status = status
        self.vendor = vendor
        self.code = code
        self.message = message
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"{self.vendor}: HTTP {self.status}"
        if self.code:
            text += f" [{self.code}]"
        if self.message:
            text += f": {self.message}"
        return text

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only __init__ needs help to pickle
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type[APIError], state: dict[str, object]) -> APIError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._describe())
    return error


class AuthError(APIError):
    """401: the token was refused."""


class ForbiddenError(APIError):
    """403: the token may not read this resource."""


class NotFoundError(APIError):
    """404, or a pipeline that a v5 batch answer left out (no such pipeline, or no run yet)."""


class RateLimitedError(APIError):
    """429: too many requests; ``retry_after`` is the server's demand in seconds, if it gave one."""

    def __init__(
        self,
        *,
        status: int = 429,
        vendor: str,
        code: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(status=status, vendor=vendor, code=code, message=message)

    def _describe(self) -> str:
        text = super()._describe()
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:g} s)"
        return text


class ServerError(APIError):
    """5xx: the vendor failed; retried before it reaches you."""


class ResponseError(PipestatusError):
    """A 2xx answer that cannot be used: invalid JSON, the wrong shape, larger than the cap."""

    def __init__(self, message: str, *, vendor: str, path: str | None = None) -> None:
        self.vendor = vendor
        self.path = path
        self.message = message
        super().__init__(f"{vendor}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_response_error, (self.message, self.vendor, self.path))


def _rebuild_response_error(message: str, vendor: str, path: str | None) -> ResponseError:
    return ResponseError(message, vendor=vendor, path=path)


class WaitTimeout(PipestatusError):
    """``Client.wait`` reached its timeout before the run finished; ``last`` is what it saw."""

    def __init__(self, message: str, *, last: object = None) -> None:
        self.last = last
        super().__init__(message)


class StoreError(PipestatusError):
    """A state store or event stream cannot be used as it is: a corrupt file, a file or keys
    of another application, a schema from a newer pipestatus, a file in use by another watch.
    The message names the file or server (never a password); nothing is reset to get past it."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached right now (refused, reset, timed out, loading); a watch
    keeps polling, holds its changes back and tries again with backoff."""


_BY_STATUS: Final[dict[int, type[APIError]]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitedError,
}


def api_error(
    status: int,
    *,
    vendor: str,
    code: str | None = None,
    message: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """The ``APIError`` subclass for an HTTP status."""
    if status == 429:
        return RateLimitedError(vendor=vendor, code=code, message=message, retry_after=retry_after)
    cls = _BY_STATUS.get(status) or (ServerError if 500 <= status <= 599 else APIError)
    return cls(status=status, vendor=vendor, code=code, message=message)
