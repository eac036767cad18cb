"""The configuration file's converter: TOML values structured into attrs classes, strictly, with
every failure addressed by its key path (``accounts.ci.batch_size: must be an integer``).

One converter serves the whole file: the keys every account has, each vendor's options class
(its fields are that vendor's configuration keys; the types and defaults come from the class) and
each pipeline entry. Its hooks are stricter than cattrs' defaults (a ``str`` takes only a string,
an ``int`` only an integer, a ``bool`` only ``true``/``false``) and never repeat the value they
refuse: a value in a configuration file may be a secret pasted in the wrong place.

:func:`structure` is the one entry point: whatever cattrs raises becomes a :class:`Problem`
(a key path and what is wrong with it), through ``cattrs.transform_error``.

A vendor's own checks of its options (a range, a combination of two) are attrs validators of its
options class raising :class:`~pipestatus.vendors._spec.OptionError`, which names the option: it
becomes a problem at that option's key.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Final, NewType, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError, StructureHandlerNotFoundError
from cattrs.v import transform_error

from pipestatus._sansio import check_base_url
from pipestatus.vendors._spec import OptionError

__all__ = [
    "ACCOUNT_NAME",
    "CONVERTER",
    "BaseURL",
    "EnvName",
    "HookURL",
    "IdText",
    "Invalid",
    "WebURL",
    "Problem",
    "Word",
    "check_hook_url",
    "structure",
]

T = TypeVar("T")

#: An account's endpoint: http(s), a host, no credentials, query or fragment; canonical form.
BaseURL = NewType("BaseURL", str)
#: The name of an environment variable (never its value).
EnvName = NewType("EnvName", str)
#: A web page for people: http(s), a host, no credentials (a query and fragment are allowed).
WebURL = NewType("WebURL", str)
#: A webhook's address: http(s), a host, no credentials (a query is allowed: robots take their
#: access token there, which is why such an address is better named with ``url_env``).
HookURL = NewType("HookURL", str)
#: A short word or name (a tag, a glob, a sink's name): a non-empty string without controls.
Word = NewType("Word", str)
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


def _web_url(value: object, _: object) -> WebURL:
    url = _str(value, None)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on an invalid port
    except ValueError:
        raise Invalid("not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid("must be an http(s):// address")
    if parts.username is not None or parts.password is not None:
        raise Invalid("must not carry credentials")
    if any(ord(char) < 0x21 or 0x7F <= ord(char) <= 0x9F for char in url):
        raise Invalid("must not contain spaces or control characters")
    return WebURL(url)


def check_hook_url(url: str) -> str:
    """``url`` if it is a usable webhook address, else :class:`Invalid` (never echoing it: it
    may hold a robot's access token)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on an invalid port
    except ValueError:
        raise Invalid("not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise Invalid("must be an http(s):// address")
    if parts.username is not None or parts.password is not None:
        raise Invalid("must not carry credentials")
    if any(ord(char) < 0x21 or 0x7F <= ord(char) <= 0x9F for char in url):
        raise Invalid("must not contain spaces or control characters")
    return url


def _hook_url(value: object, _: object) -> HookURL:
    return HookURL(check_hook_url(_str(value, None)))


def _word(value: object, _: object) -> Word:
    text = _str(value, None)
    if any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in text):
        raise Invalid("must not contain control characters")
    return Word(text)


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
        (WebURL, _web_url),
        (HookURL, _hook_url),
        (Word, _word),
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
        refused = _option_error(exc)
        if refused is not None:  # the vendor's own check: addressed to the option it guards
            raise Problem(f"{key}.{refused.option}", refused.problem) from None
        found = transform_error(exc, key, _describe)
    problem, _, path = found[0].partition(" @ ")
    raise Problem(path, problem)


def _option_error(exc: BaseException) -> OptionError | None:
    """The vendor's own refusal of an option (an attrs validator of its options class), found
    in whatever cattrs wrapped it in."""
    if isinstance(exc, OptionError):
        return exc
    for child in getattr(exc, "exceptions", ()):
        found = _option_error(child)
        if found is not None:
            return found
    return None
