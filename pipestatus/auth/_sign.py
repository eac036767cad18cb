"""SDK-HMAC-SHA256, the request signature of Huawei Cloud's API gateway, as pure functions.

This is the algorithm of the official SDK's signer (``huaweicloudsdkcore/signer/signer.py``),
step by step, over plain values (no network, no event loop), so the client that signs and the
simulated gateway that checks share one implementation and the published test vectors run
against it directly:

1. ``X-Sdk-Date`` (UTC, ``20191115T033655Z``) and ``Host`` are added when missing; a body whose
   ``Content-Type`` is neither JSON nor BSON is hashed as ``UNSIGNED-PAYLOAD``.
2. SignedHeaders: every header name, lower-cased, except names holding ``_``, sorted.
3. CanonicalRequest: the method, the canonical URI (each segment percent-encoded, and a
   trailing ``/`` that only the signature sees), the canonical query (pairs sorted by key then
   value, RFC 3986 encoded; also what is sent as the query), the signed headers as
   ``name:value`` lines, their names, and the body's SHA-256.
4. StringToSign: ``SDK-HMAC-SHA256``, the date and the SHA-256 of the canonical request;
   the signature is its HMAC-SHA256 under the SK, and goes out as ``Authorization``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import attrs

__all__ = [
    "ALGORITHM",
    "DATE_FORMAT",
    "EMPTY_SHA256",
    "Signature",
    "Signed",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "encode",
    "format_date",
    "host_of",
    "parse_authorization",
    "parse_date",
    "payload_hash",
    "query_pairs",
    "sign",
    "signature",
    "signed_names",
    "string_to_sign",
]

ALGORITHM: Final = "SDK-HMAC-SHA256"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
#: SHA-256 of nothing: the payload hash of a request without a body.
EMPTY_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
_HASHED_TYPES: Final = ("application/json", "application/bson")

_AUTHORIZATION: Final = re.compile(
    rf"{ALGORITHM} Access=(?P<ak>[^,\s]+), SignedHeaders=(?P<names>[^,\s]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)

QueryValue = str | int | bool | Iterable[str | int | bool]


@functools.lru_cache(maxsize=4096)
def encode(text: str) -> str:
    """Percent-encode all but RFC 3986's unreserved characters (``A-Z a-z 0-9 - _ . ~``)."""
    return quote(text, safe="~")


@functools.lru_cache(maxsize=4096)  # a poller signs the same few paths over and over
def canonical_uri(path: str) -> str:
    """The path as signed: percent-decoded, split on ``/``, each segment encoded, joined, and
    ending in ``/`` (the request itself goes out without that slash)."""
    uri = "/".join(encode(part) for part in unquote(path).split("/"))
    return uri if uri.endswith("/") else f"{uri}/"


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_query(params: Mapping[str, QueryValue] | Iterable[tuple[str, QueryValue]]) -> str:
    """The canonical query: pairs sorted by key, then value, as they are (the SDK sorts before
    it encodes, so ``z`` comes before ``é``); then each side encoded; a list value is repeated
    pairs, in its own sorted order; booleans are ``true``/``false``; ``""`` for no query."""
    items = params.items() if isinstance(params, Mapping) else params

    def order(item: tuple[str, QueryValue]) -> tuple[str, str]:
        value = item[1]
        return item[0], _text(value) if isinstance(value, str | int | bool) else ""

    parts: list[str] = []
    for key, value in sorted(items, key=order):
        name = encode(key)
        if isinstance(value, str | int | bool):
            parts.append(f"{name}={encode(_text(value))}")
        else:
            parts.extend(f"{name}={encode(_text(each))}" for each in sorted(value))
    return "&".join(parts)


def query_pairs(query: str) -> list[tuple[str, str]]:
    """An encoded query string as decoded pairs (``+`` is a space, blank values kept)."""
    return parse_qsl(query, keep_blank_values=True)


def signed_names(headers: Mapping[str, str]) -> list[str]:
    """The names a signature covers: every header's, lower-cased, without those holding ``_``,
    sorted."""
    return sorted({name.lower() for name in headers if "_" not in name})


def payload_hash(body: bytes | None, headers: Mapping[str, str]) -> str:
    """What the canonical request says of the body: the hash of nothing, ``UNSIGNED-PAYLOAD``
    where ``X-Sdk-Content-Sha256`` says so, or the body's SHA-256."""
    if not body:
        return EMPTY_SHA256
    declared = _lower(headers).get("x-sdk-content-sha256")
    if declared == UNSIGNED_PAYLOAD:
        return UNSIGNED_PAYLOAD
    return hashlib.sha256(body).hexdigest()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    names: Iterable[str],
    body_hash: str,
) -> str:
    """The six lines of the canonical request; ``query`` is already canonical, ``names`` are
    the signed header names (lower case, sorted)."""
    lower = _lower(headers)
    names = list(names)
    block = "".join(f"{name}:{lower.get(name, '').strip()}\n" for name in names)
    return "\n".join(
        [method.upper(), canonical_uri(path), query, block, ";".join(names), body_hash]
    )


def string_to_sign(canonical: str, date: str) -> str:
    """``SDK-HMAC-SHA256``, the ``X-Sdk-Date`` and the hex SHA-256 of the canonical request."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{date}\n{digest}"


def signature(sk: str, to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``to_sign`` under the secret key."""
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def format_date(when: datetime) -> str:
    """``X-Sdk-Date`` for an aware time: UTC, ``%Y%m%dT%H%M%SZ``."""
    return when.astimezone(UTC).strftime(DATE_FORMAT)


def parse_date(text: str) -> datetime | None:
    """An ``X-Sdk-Date`` value as an aware UTC time, or ``None`` when it is not one."""
    try:
        return datetime.strptime(text.strip(), DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def host_of(url: str) -> str:
    """The ``Host`` header a request to ``url`` carries (the URL's own ``host[:port]``)."""
    return urlsplit(url).netloc.rpartition("@")[2]


@attrs.frozen(kw_only=True)
class Signature:
    """The parts of an ``Authorization: SDK-HMAC-SHA256 ...`` header."""

    ak: str
    names: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Signature | None:
    """The parts of an SDK-HMAC-SHA256 ``Authorization`` value, or ``None`` for another."""
    found = _AUTHORIZATION.fullmatch(value.strip())
    if found is None:
        return None
    return Signature(
        ak=found["ak"], names=tuple(found["names"].split(";")), signature=found["signature"]
    )


@attrs.frozen(kw_only=True)
class Signed:
    """A signed request's parts: the headers to send (``Authorization`` included) and the
    canonical query, which is also the query to send."""

    headers: Mapping[str, str]
    query: str
    canonical: str = attrs.field(repr=False)


def sign(
    *,
    method: str,
    url: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
    ak: str,
    sk: str,
    now: datetime,
) -> Signed:
    """Sign one request as the SDK does (see the module docstring). ``url`` has no query;
    ``query`` is encoded (any order, ``+`` or ``%20`` for a space); ``headers`` are final
    (credential headers such as ``X-Project-Id`` included)."""
    out = dict(headers)
    lower = _lower(out)
    if "content-type" in lower and not lower["content-type"].startswith(_HASHED_TYPES):
        out["X-Sdk-Content-Sha256"] = UNSIGNED_PAYLOAD
    date = lower.get("x-sdk-date")
    if date is None or parse_date(date) is None:
        out = {name: value for name, value in out.items() if name.lower() != "x-sdk-date"}
        date = format_date(now)
        out["X-Sdk-Date"] = date
    if "host" not in lower:
        out["Host"] = host_of(url)
    names = signed_names(out)
    canonical_query_ = canonical_query(query_pairs(query))
    canonical = canonical_request(
        method, urlsplit(url).path or "/", canonical_query_, out, names, payload_hash(body, out)
    )
    mac = signature(sk, string_to_sign(canonical, date))
    out["Authorization"] = (
        f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(names)}, Signature={mac}"
    )
    return Signed(headers=out, query=canonical_query_, canonical=canonical)
