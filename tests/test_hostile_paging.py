"""A paged list that cycles (pages A, B, A, B... with no total) is stopped at its first repeated
page with a clear error, in as many requests as pages it had: never duplicates, never 10,000
requests. The rule is one pure function (``vendors._base.page_repeats``), which the shared
paging rule every pager follows (``vendors._paging.Pages``) calls."""

from __future__ import annotations

import pytest

from pipestatus import Client
from pipestatus.errors import ResponseError
from pipestatus.testing import Fault, SimJob, SimRun, SimStage, VendorServer
from pipestatus.testing.hostile import CyclePages
from pipestatus.vendors._base import page_repeats


def test_a_page_seen_before_repeats() -> None:
    """A, B, then A again: the third page repeats; an empty page never does."""
    seen: set[tuple[str, ...]] = set()
    assert not page_repeats(seen, ["1", "2"])
    assert not page_repeats(seen, ["3", "4"])
    assert page_repeats(seen, ["1", "2"])
    assert not page_repeats(seen, [])
    assert not page_repeats(seen, [])


def test_a_list_that_shifts_while_paged_does_not_repeat() -> None:
    """New items pushing old ones onto the next page repeat items, not pages: no stop."""
    seen: set[tuple[str, ...]] = set()
    assert not page_repeats(seen, ["5", "4", "3"])
    assert not page_repeats(seen, ["3", "2", "1"])  # "3" again, on another page


@pytest.mark.parametrize("period", [1, 2, 3])
async def test_a_cycling_job_list_stops_at_its_first_repeated_page(period: int) -> None:
    """A v4 job list serving its first ``period`` pages over and over, without X-Total, ends
    in a ResponseError after ``period + 1`` requests, having yielded each job once."""
    run = SimRun(1, "running", [SimStage("build", [SimJob("make", "running")])])
    async with VendorServer(token="t") as server, Client(retries=0) as client:
        server.add_repo_pipeline(2000, 1, run, extra_jobs=1000)
        server.add_fault(Fault(path_prefix="/v4/", effects=(CyclePages(period=period),)))
        repo = client.codearts_repo(server.url, token="t")
        seen: list[str] = []

        async def page_through() -> None:
            async for job in repo.iter_jobs(2000, 1, page_size=100):
                seen.append(job.id)

        with pytest.raises(ResponseError, match="same page again") as info:
            await page_through()
        requests = len(server.requests)
    assert requests == period + 1
    assert len(seen) == len(set(seen)) == period * 100
    assert f"page {period + 1}" in str(info.value)
