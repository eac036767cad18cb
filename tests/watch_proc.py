"""A watch process for the kill tests: ``python tests/watch_proc.py SETTINGS_JSON``.

It watches the settings' targets with a store (``{"sqlite": path}`` or ``{"redis": url,
"member": name, "heartbeat": seconds, "stream": name}``) and prints one JSON line per change
(its stable ID, the target's key, the kind, the run's number and status; a v4 run, which has
no number, is named by its first job, which the tests name after the run), flushed before it
asks for the next change; with replicas also ``{"owned": [keys]}`` whenever its share changes.
It runs until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from pipestatus import Client, Run
from pipestatus.store import RedisStore, SQLiteStore
from pipestatus.stream import RedisStream
from pipestatus.vendors import REGISTRY
from pipestatus.watch.keys import target_key


def say(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


async def main(settings: dict[str, Any]) -> None:
    async with Client(timeout=5, retries=1) as client:
        sources: dict[str, Any] = {}
        targets = []
        for vendor, ids in settings["targets"]:
            if vendor not in sources:
                options = REGISTRY[vendor].demo.options
                sources[vendor] = getattr(client, vendor)(
                    settings["url"], token=settings["token"], **options
                )
            targets.append(sources[vendor].target(*ids))
        where = settings["store"]
        publish = None
        if "sqlite" in where:
            store: Any = SQLiteStore(where["sqlite"])
        else:
            store = RedisStore(where["redis"], member=where["member"], heartbeat=where["heartbeat"])
            publish = RedisStream(where["redis"], stream=where["stream"])
        watcher = client.watcher(
            targets,
            interval=settings["interval"],
            idle_interval=settings["interval"] * 2,
            store=store,
            publish=publish,
        )
        shown: set[str] | None = None

        async def shares() -> None:
            nonlocal shown
            while True:
                owned = {target_key(t) for t in watcher.owned}
                if owned != shown:
                    shown = owned
                    say({"owned": sorted(owned)})
                await asyncio.sleep(0.05)

        watching = asyncio.create_task(shares()) if publish is not None else None
        async with watcher:
            async for change in watcher:
                run = change.current if isinstance(change.current, Run) else None
                say(
                    {
                        "id": watcher.last_event_id,
                        "key": target_key(change.target),
                        "kind": change.kind.value,
                        # v4 runs have no number: the tests name the job after it instead
                        "number": run.number
                        if run and run.number is not None
                        else (run.jobs[0].name if run and run.jobs else None),
                        "status": run.status.value if run else None,
                        "terminal": bool(run and run.status.is_terminal),
                    }
                )
        if watching is not None:
            watching.cancel()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
