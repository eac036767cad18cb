"""``pipestatus serve`` over a whole project (``pipelines = "*"``): a pipeline created while
the service runs joins the page and the API, one deleted leaves them, without a restart."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from servehelp import ENV, TOKEN, a_run, get, serving, until, write

from pipestatus.testing import VendorServer

PROJECT = "whole"


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_v5_pipeline(PROJECT, "first", a_run(1, "success"), name="first")
        srv.add_v5_pipeline(PROJECT, "second", a_run(2, "failed"), name="second")
        yield srv


def _config(tmp_path: Path, url: str) -> Path:
    return write(
        tmp_path,
        f"""\
[accounts.whole]
vendor = "codearts_pipeline"
endpoint = "{url}"
token_env = "{ENV}"
project_id = "{PROJECT}"
pipelines = "*"
""",
    )


async def _names(url: str) -> set[str]:
    _, body, _ = await get(url + "/api/v1/runs")
    return {record["name"] for record in json.loads(body)["pipelines"]}


async def test_a_served_project_gains_and_loses_pipelines(
    server: VendorServer, tmp_path: Path
) -> None:
    """The API lists the project's pipelines; one added to the project appears, and one
    deleted from it disappears, each within a few re-listings, while the page keeps serving.
    (Pipelines found at start carry the vendor's name; one found later is ``account/id``.)"""
    async with serving(_config(tmp_path, server.url), interval=0.05) as served:
        await until(lambda: _names_are(served.url, {"first", "second"}))

        server.add_v5_pipeline(PROJECT, "third", a_run(3, "running"), name="third")
        await until(lambda: _names_are(served.url, {"first", "second", "whole/third"}))

        server.remove_pipeline("codearts_pipeline", ["second"], project_id=PROJECT)
        await until(lambda: _names_are(served.url, {"first", "whole/third"}))
        status, page, _ = await get(served.url + "/")
        assert status == 200
        assert "whole/third" in page
        assert ">second<" not in page


async def _names_are(url: str, expected: set[str]) -> bool:
    return await _names(url) == expected
