"""SDK-HMAC-SHA256 as pure functions: the published test vectors of the official SDK and the
signing guide (``shared/vendor-docs/huawei-auth.md`` §4), bit for bit, and the rules of §3 that
the vectors do not cover."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from pipestatus.auth._sign import (
    EMPTY_SHA256,
    canonical_query,
    canonical_uri,
    format_date,
    parse_authorization,
    parse_date,
    query_pairs,
    sign,
    signed_names,
)

NOW = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)  # never used where a vector gives X-Sdk-Date
V12_URL = "https://service.endpoint.myhuaweicloud.com/resources"
V12_HEADERS = {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "TEST_VALUE"}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_vector_1_get_with_an_unsigned_underscore_header() -> None:
    """V1 (SDK test_signer1): the canonical request's hash and the Authorization header."""
    signed = sign(
        method="GET",
        url=V12_URL,
        query="size=1",
        headers=V12_HEADERS,
        body=None,
        ak="AccessKey",
        sk="SecretKey",
        now=NOW,
    )
    assert _sha(signed.canonical) == (
        "de94dd1e1ccdb730b403ce35d7e14f7c7b04337f6def1c3a3a2ba936852b133f"
    )
    assert signed.headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, "
        "Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
    )


def test_vector_2_post_with_a_body() -> None:
    """V2 (SDK test_signer2): the canonical request verbatim and the signature."""
    signed = sign(
        method="POST",
        url=V12_URL,
        query="size=1",
        headers=V12_HEADERS,
        body=b'{"name":"test","id":1}',
        ak="AccessKey",
        sk="SecretKey",
        now=NOW,
    )
    assert signed.canonical == (
        "POST\n/resources/\nsize=1\nhost:service.endpoint.myhuaweicloud.com\n"
        "x-sdk-date:20200608T023900Z\n\nhost;x-sdk-date\n"
        "8ed555081b9961769014bc1182c629bb0fe68d7b01c1fc1caab4dc791f377e8c"
    )
    assert signed.headers["Authorization"].endswith(
        "Signature=436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"
    )


def test_vector_3_signing_guide_example() -> None:
    """V3 (the signing guide's worked example): the canonical request with the full empty-body
    hash, its SHA-256, and the signature."""
    signed = sign(
        method="GET",
        url="https://service.region.example.com/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
        query="limit=2&marker=13551d6b-755d-4757-b956-536f674975c0",
        headers={
            "Content-Type": "application/json",
            "Host": "service.region.example.com",
            "X-Sdk-Date": "20191115T033655Z",
        },
        body=None,
        ak="QTWAOYTTINDUT2QVKYUC",
        sk="MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
        now=NOW,
    )
    assert signed.canonical == (
        "GET\n/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/\n"
        "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0\n"
        "content-type:application/json\nhost:service.region.example.com\n"
        f"x-sdk-date:20191115T033655Z\n\ncontent-type;host;x-sdk-date\n{EMPTY_SHA256}"
    )
    assert _sha(signed.canonical) == (
        "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
    )
    assert signed.headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "
        "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


def test_vector_4_canonical_query() -> None:
    """V4 (SDK test_process_canonical_query_string): sorted pairs, booleans as true/false, a
    list as repeated pairs, RFC 3986 encoding of '/', space and the reserved characters."""
    params = {
        "limit": 1,
        "enable": True,
        "test": "一 (&=?!#%.*)",
        "path": "/tmp/123",  # noqa: S108 - the vector's value, not a file
        "multi": [1, 2, 3],
    }
    assert canonical_query(params) == (
        "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123"
        "&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
    )


def test_empty_body_hash_is_the_hash_of_nothing() -> None:
    """The payload line of a request without a body is SHA-256 of nothing."""
    assert hashlib.sha256(b"").hexdigest() == EMPTY_SHA256


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        pytest.param("/", "/", id="root"),
        pytest.param("/v4/a/b", "/v4/a/b/", id="slash-appended"),
        pytest.param("/v4/a/b/", "/v4/a/b/", id="slash-kept"),
        pytest.param("/v5/proj%20x/api", "/v5/proj%20x/api/", id="encoded-space"),
        pytest.param("/v5/%E4%B8%80/api", "/v5/%E4%B8%80/api/", id="utf8"),
        pytest.param("/v5/a~b_c.d-e", "/v5/a~b_c.d-e/", id="unreserved"),
        pytest.param("/v5/a(b)*", "/v5/a%28b%29%2A/", id="reserved-encoded"),
    ],
)
def test_canonical_uri(path: str, canonical: str) -> None:
    """The canonical URI re-encodes each decoded segment and ends in '/'."""
    assert canonical_uri(path) == canonical


def test_query_pairs_are_sorted_before_they_are_encoded() -> None:
    """As the SDK does, pairs are sorted as they are and encoded after: 'z' sorts before 'é'
    (whose encoding, '%C3%A9', would sort first), and a list keeps its own sorted order."""
    assert canonical_query({"é": "1", "z": "2"}) == "z=2&%C3%A9=1"
    assert canonical_query([("k", "b"), ("k", "a b"), ("j", "2")]) == "j=2&k=a%20b&k=b"
    assert canonical_query({"n": [10, 9]}) == "n=9&n=10"


def test_query_as_sent_in_any_form_has_one_canonical_form() -> None:
    """Pairs in any order, with '+' or %20 for a space, canonicalise to the same string."""
    forms = ["b=2&a=x+y&a=1", "a=1&a=x%20y&b=2", "b=2&a=x%20y&a=1"]
    assert {canonical_query(query_pairs(form)) for form in forms} == {"a=1&a=x%20y&b=2"}


def test_signed_headers_skip_underscores_and_ignore_case() -> None:
    """Signed header names are lower case, sorted, without names holding '_'."""
    headers = {"X-Sdk-Date": "d", "Host": "h", "If-None-Match": '"e"', "X_Trace": "t"}
    assert signed_names(headers) == ["host", "if-none-match", "x-sdk-date"]


def test_a_missing_date_is_now_in_utc() -> None:
    """Without X-Sdk-Date the signer dates the request now, in UTC, as %Y%m%dT%H%M%SZ; Host is
    the URL's host and port."""
    signed = sign(
        method="GET",
        url="http://127.0.0.1:8080/x",
        query="",
        headers={},
        body=None,
        ak="ak",
        sk="sk",
        now=NOW,
    )
    assert signed.headers["X-Sdk-Date"] == "20310102T030405Z" == format_date(NOW)
    assert parse_date(signed.headers["X-Sdk-Date"]) == NOW
    assert signed.headers["Host"] == "127.0.0.1:8080"
    parts = parse_authorization(signed.headers["Authorization"])
    assert parts is not None
    assert parts.names == ("host", "x-sdk-date")


def test_a_non_json_body_is_unsigned_payload() -> None:
    """A body whose Content-Type is neither JSON nor BSON is hashed as UNSIGNED-PAYLOAD, and
    the header that says so is signed."""
    signed = sign(
        method="PUT",
        url="https://h/x",
        query="",
        headers={"Content-Type": "text/plain"},
        body=b"hello",
        ak="ak",
        sk="sk",
        now=NOW,
    )
    assert signed.canonical.endswith("\nUNSIGNED-PAYLOAD")
    assert "x-sdk-content-sha256" in signed.headers["Authorization"]


def test_another_authorization_scheme_is_not_parsed() -> None:
    """parse_authorization reads only SDK-HMAC-SHA256 values."""
    assert parse_authorization("Bearer abc") is None
    assert parse_authorization("SDK-HMAC-SHA256 Access=a, SignedHeaders=host, Signature=zz") is None
