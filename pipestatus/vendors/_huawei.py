"""What the two Huawei Cloud vendors share: the API gateway in front of both, and so the shape of
their error bodies."""

from __future__ import annotations

from pipestatus.vendors._base import json_error

__all__ = ["decode_error"]


def decode_error(body: bytes) -> tuple[str | None, str | None]:
    """Huawei's ``{"error_code", "error_msg"}`` (some services nest it under ``error``, with
    ``code``/``message``)."""
    return json_error(
        body, codes=("error_code", "code"), messages=("error_msg", "message", "msg"), nested="error"
    )
