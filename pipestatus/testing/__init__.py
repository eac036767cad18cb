"""A simulated CI vendor server on 127.0.0.1, for end-to-end tests, the demo and benchmarks.

:class:`VendorServer` is a real :mod:`aiohttp.web` server that speaks the API of every vendor in
:data:`pipestatus.vendors.REGISTRY`, with the payload shapes of the vendors' documentation: one
dialect each, under :mod:`pipestatus.testing.dialects` (its routes, payloads, error bodies and
status words are described there). The simulator keeps status tables of its own, canonical word
-> vendor word (:data:`V4_STATUS`, :data:`V5_RUN_STATUS`, :data:`V5_STAGE_STATUS`,
:data:`YUNXIAO_STATUS`), independent of the library's, so the two can disagree.

Pipelines are described vendor-neutrally with :class:`SimRun`, :class:`SimStage` and
:class:`SimJob`, whose statuses are the canonical words of :data:`CANONICAL_STATUSES`; a status
written ``"raw:WORD"`` is sent as ``WORD`` to every vendor::

    async with VendorServer(token="secret-token") as server:
        server.add_repo_pipeline(
            2111976239,
            6,
            [  # a script: one element per request, the last one repeats
                SimRun(7, "pending", [SimStage("build", [SimJob("mvn", "pending")])]),
                SimRun(7, "success", [SimStage("build", [SimJob("mvn", "success")])]),
            ],
        )
        server.fault(status=503, times=1)  # the first request fails

A run source (:data:`RunSource`) is a :class:`SimRun`, a script, a callable of the seconds since
the server started, or ``None`` (the pipeline exists and has never run). Every vendor's
pipelines can also be added by key with :meth:`VendorServer.add_pipeline`, and
:func:`make_fleet` adds the demo fleet of every vendor.

A fault that answers instead of the pipeline (a status, a redirect, a raw body, an oversized
stream) does not advance its script; a fault that damages the pipeline's own answer (hang,
trickle, malformed, truncate, reset, payload mutator, unknown status word) does. Faults
(:meth:`VendorServer.fault`, :mod:`pipestatus.testing.faults`) are a matcher and a tuple of
effects; :meth:`VendorServer.chaos` injects random ones at a seeded rate from a weighted table.
Every 200 GET answer carries an ``ETag``; a matching ``If-None-Match`` gets ``304``. Requests
are recorded (:attr:`VendorServer.requests`) and concurrency is measured
(:attr:`VendorServer.peak_in_flight`; wait for it with ``await server.wait_in_flight(n)``,
bounded by ``asyncio.timeout``).

Run standalone with ``python -m pipestatus.testing --fleet`` (see :func:`main` and the README):
the first line of standard output is the server's URL, and it serves until SIGTERM/SIGINT.

The modules: :mod:`._sim` (the model, run sources, times), :mod:`._server` (the server core),
:mod:`._answers` (answers and the writers that damage them), :mod:`.faults`, :mod:`.chaos`,
:mod:`.dialects`, :mod:`.fleet`, :mod:`._standalone` (behind ``__main__``).
"""

from __future__ import annotations

from pipestatus.testing._server import RecordedRequest, VendorServer
from pipestatus.testing._sim import CANONICAL_STATUSES, RunSource, SimJob, SimRun, SimStage
from pipestatus.testing._standalone import main
from pipestatus.testing.chaos import CHAOS_KINDS
from pipestatus.testing.dialects import (
    ERROR_BODIES,
    V4_STATUS,
    V5_RUN_STATUS,
    V5_STAGE_STATUS,
    YUNXIAO_STATUS,
)
from pipestatus.testing.faults import Fault
from pipestatus.testing.fleet import make_fleet

__all__ = [
    "CANONICAL_STATUSES",
    "CHAOS_KINDS",
    "ERROR_BODIES",
    "V4_STATUS",
    "V5_RUN_STATUS",
    "V5_STAGE_STATUS",
    "YUNXIAO_STATUS",
    "Fault",
    "RecordedRequest",
    "RunSource",
    "SimJob",
    "SimRun",
    "SimStage",
    "VendorServer",
    "main",
    "make_fleet",
]
