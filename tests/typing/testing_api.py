"""Checked by mypy --strict, never run: ``pipestatus.testing`` as users' tests type it."""

from __future__ import annotations

from pipestatus.testing import (
    CHAOS_KINDS,
    Fault,
    RecordedRequest,
    SimJob,
    SimRun,
    SimStage,
    VendorServer,
    make_fleet,
)
from pipestatus.testing.faults import Delay, StatusAnswer


async def simulator() -> None:
    async with VendorServer(token="t", seed=1) as server:
        run = SimRun(3, "success", [SimStage("build", [SimJob("make", "success")])])
        server.add_repo_pipeline(1, 2, [run, run], extra_jobs=5)
        server.add_v5_pipeline("proj", "p1", None)
        server.add_yunxiao_pipeline("9", lambda elapsed: run, organization_id="org")
        server.add_pipeline("codearts_repo", (1, 3), run)
        make_fleet(server, 3, seed=2, speed=10.0)
        fault: Fault = server.fault(vendor="yunxiao", pipeline=9, status=503, retry_after=1.5)
        server.fault(hang=True, times=2).release()
        server.fault(payload_mutator=lambda payload: payload, headers={"X": "1"})
        server.fault(stauts=503)  # type: ignore[call-arg]
        server.fault(status="503")  # type: ignore[arg-type]
        server.add_fault(Fault(times=1, effects=(Delay(0.1), StatusAnswer(500))))
        hits: int = fault.hits
        fault.remove()
        server.clear_faults()
        server.chaos(0.3, seed=4, kinds=CHAOS_KINDS[:2], hang=1.0, trickle=0.01)
        requests: list[RecordedRequest] = server.requests
        counts: tuple[int, int, int] = (server.request_count, server.in_flight, hits)
        await server.wait_in_flight(1)
        server.reset_stats()
        url: str = server.url
