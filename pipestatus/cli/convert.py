"""The configuration file's converter: TOML values structured into attrs classes, strictly, with
every failure addressed by its key path (``accounts.ci.batch_size: must be an integer``).

One converter serves the whole file: the keys every account has, each vendor's options class
(its fields are that vendor's configuration keys; the types and defaults come from the class) and
each pipeline entry. Its hooks are stricter than cattrs' defaults (a ``str`` takes only a string,
an ``int`` only an integer, a ``bool`` only ``true``/``false``) and never repeat the value they
refuse: a value in a configuration file may be a secret pasted in the wrong place.

:func:`structure` is the one entry point: whatever cattrs raises becomes a :class:`Problem`
(a key path and what is wrong with it), through ``cattrs.transform_error``.

A vendor checks some of its options (a combination of two, a range) only when its adapter is
made. :func:`try_options` makes the adapter once on a sender that sends nothing, so those checks
run while the file is read, and :func:`addressed` turns what they raise into a problem at the
option their message names.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from types import UnionType
from typing import Any, Final, NewType, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError, StructureHandlerNotFoundError
from cattrs.v import transform_error

from pipestatus._sansio import Endpoint, Request, Response, Sender, Validators, check_base_url
from pipestatus.auth import Auth
from pipestatus.vendors import VendorSpec

__all__ = [
    "ACCOUNT_NAME",
    "CONVERTER",
    "BaseURL",
    "EnvName",
    "IdText",
    "Invalid",
    "Problem",
    "addressed",
    "structure",
    "try_options",
]

T = TypeVar("T")

#: An account's endpoint: http(s), a host, no credentials, query or fragment; canonical form.
BaseURL = NewType("BaseURL", str)
#: The name of an environment variable (never its value).
EnvName = NewType("EnvName", str)
#: A pipeline ID as the file gives it (a string or an integer), held as a stripped ``str``.
IdText = NewType("IdText", str)

#: What an account's name (``[accounts.NAME]``) may be made of.
ACCOUNT_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Invalid(ValueError):
    """A value the file cannot have; the text says what is wrong and never holds the value."""


class Problem(Exception):
    """What is wrong at one key path of the file: ``key`` (``accounts.ci.endpoint``) and
    ``problem`` (``must be http(s)://host[:port][/prefix]``)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# --- hooks -------------------------------------------------------------------------------------


def _str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise Invalid("must be a string")
    if not value.strip():
        raise Invalid("must not be empty")
    return value.strip()


def _bool(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid("must be true or false")
    return value


def _int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("must be an integer")
    return value


def _float(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("must be a number")
    return float(value)


def _id_text(value: object, _: object) -> IdText:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Invalid("must be a string or an integer")
    text = str(value).strip()
    if not text:
        raise Invalid("must not be empty")
    return IdText(text)


def _env_name(value: object, _: object) -> EnvName:
    name = _str(value, None)
    if not _ENV_NAME.fullmatch(name):
        raise Invalid(
            "must be the name of an environment variable (letters, digits, '_'), not a token"
        )
    return EnvName(name)


def _base_url(value: object, _: object) -> BaseURL:
    # The URL is never echoed: a pasted URL may hold credentials.
    url = _str(value, None)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on an invalid port
    except ValueError:
        raise Invalid("not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid("must be http(s)://host[:port][/prefix]")
    if parts.username is not None or parts.password is not None:
        raise Invalid("must not carry credentials: name the token's variable with token_env")
    if parts.query or parts.fragment:
        raise Invalid("must not have a query or fragment")
    try:
        return BaseURL(check_base_url(url))
    except ValueError:  # its message repeats the URL
        raise Invalid("not a valid URL") from None


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    for kind, hook in (
        (str, _str),
        (bool, _bool),
        (int, _int),
        (float, _float),
        (IdText, _id_text),
        (EnvName, _env_name),
        (BaseURL, _base_url),
    ):
        converter.register_structure_hook(kind, hook)
    return converter


#: The one converter of the configuration file.
CONVERTER: Final = _make_converter()


# --- errors ------------------------------------------------------------------------------------


def _describe(exc: BaseException, kind: type | None) -> str:
    """What is wrong, for ``transform_error``: never the value, never ``" @ "``."""
    if isinstance(exc, Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown key ({', '.join(sorted(exc.extra_fields))})"
    if isinstance(exc, StructureHandlerNotFoundError):
        return "cannot be read (no reader for its type)"
    if _is_table(kind):
        return "must be a table"
    if isinstance(exc, ValueError) and kind is None:
        # Raised by the class itself (an attrs validator): its own words, written for people.
        return str(exc).replace(" @ ", " at ")
    name = getattr(kind, "__name__", None)
    return f"invalid value (expected {name})" if name else "invalid value"


def _is_table(kind: object) -> bool:
    """Whether ``kind`` (or a member of the union ``kind``) is an attrs class."""
    kinds = get_args(kind) if get_origin(kind) in (Union, UnionType) else (kind,)
    return any(isinstance(k, type) and attrs.has(k) for k in kinds)


def structure(data: object, cls: type[T], key: str) -> T:
    """``data`` as a ``cls``, or the first :class:`Problem` found, addressed from ``key``."""
    try:
        return CONVERTER.structure(data, cls)
    except (  # every failure of a structuring: cattrs' groups, or one hook's own error
        cattrs.BaseValidationError,
        ForbiddenExtraKeysError,
        StructureHandlerNotFoundError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
    ) as exc:
        found = transform_error(exc, key, _describe)
    problem, _, path = found[0].partition(" @ ")
    raise Problem(path, problem)


# --- the vendor's own checks of its options ---------------------------------------------------


@contextlib.contextmanager
def addressed(fields: frozenset[str], where: str) -> Iterator[None]:
    """A problem the block reports at the account itself, or a ``ValueError`` it raises (the
    vendor's own check of its options), addressed to the option it names (``batch_size must
    be in 1..1000`` -> ``accounts.ci.batch_size: must be in 1..1000``), else to the account."""
    try:
        yield
    except Problem as problem:
        if problem.key != where:
            raise
        text = problem.problem
    except (ValueError, TypeError) as exc:
        text = str(exc)
    else:
        return
    named = [(match.start(), match.group()) for match in _words(fields).finditer(text)]
    if not named:
        raise Problem(where, text) from None
    start, field = min(named)
    if start == 0:
        text = text[len(field) :].lstrip(" :") or text
    raise Problem(f"{where}.{field}", text) from None


def _words(fields: frozenset[str]) -> re.Pattern[str]:
    if not fields:
        return re.compile(r"(?!)")
    return re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(fields))) + r")\b")


class _NoCredentials(Auth):
    """An auth that adds nothing: the options check sends no request."""

    __slots__ = ()

    async def apply(self, request: Request, sender: Sender) -> Request:
        return request


class _Unsent:
    """A sender that sends nothing: adapters made on it only run their own checks."""

    max_concurrency = 1
    timeout = 1.0

    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        validators: Validators | None = None,
    ) -> Response:
        raise RuntimeError("the configuration check sends no request")


def try_options(spec: VendorSpec[Any, Any], endpoint: str, options: object) -> None:
    """Make the vendor's adapter once, sending nothing: an adapter checks its options when it
    is made, so a combination it refuses is reported while the file is read."""
    where = Endpoint.create(spec.key, endpoint, _NoCredentials(), spec.decode_error)
    spec.adapter(_Unsent(), where, options, conditional=False)
