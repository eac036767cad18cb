"""The layering rule, checked in fresh interpreters: the pure core loads no network library.

Importing the model, the status rule or any vendor's ``parse_*`` functions must leave aiohttp
out of ``sys.modules`` (they are pure: a payload becomes a ``Run`` with no network and no event
loop), and ``import pipestatus`` alone loads neither aiohttp nor cattrs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipestatus.vendors import REGISTRY

NETWORK = ("aiohttp", "yarl", "multidict")


def _loaded_after(code: str) -> set[str]:
    """The top-level modules loaded by a fresh interpreter after running ``code``."""
    report = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{report}"
    done = subprocess.run(  # noqa: S603 - our own interpreter and our own code
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import pipestatus.model",
        "import pipestatus.status",
        "import pipestatus.errors",
        "from pipestatus import Run, Stage, Job, Status, Target, Change",
        *(f"from pipestatus.vendors.{key} import *  # its parse functions" for key in REGISTRY),
    ],
)
def test_pure_core_loads_no_network_library(code: str) -> None:
    """The model, the status rule, the errors and each vendor's parse functions load no aiohttp."""
    loaded = _loaded_after(code)
    assert not loaded & set(NETWORK), sorted(loaded & set(NETWORK))


def test_parse_functions_run_without_a_network_library() -> None:
    """A vendor's parse function turns a payload into a Run with aiohttp never imported."""
    code = (
        "from pipestatus.vendors.codearts_pipeline import parse_run\n"
        "run = parse_run({'pipeline_id': 'p', 'status': 'COMPLETED'})\n"
        "assert run.status.value == 'success', run\n"
    )
    assert "aiohttp" not in _loaded_after(code)


def test_importing_the_package_is_cheap() -> None:
    """``import pipestatus`` loads neither aiohttp nor cattrs: each name loads on first use."""
    loaded = _loaded_after("import pipestatus")
    assert not loaded & {"aiohttp", "cattrs", "yarl"}


def test_client_is_there_when_asked_for() -> None:
    """``from pipestatus import Client`` still works, and brings aiohttp with it."""
    loaded = _loaded_after("from pipestatus import Client\nassert Client.__name__ == 'Client'")
    assert "aiohttp" in loaded


def test_the_library_loads_no_terminal_library() -> None:
    """The library (its client, watch and every vendor) loads no rich: only the command does."""
    loaded = _loaded_after(
        "import pipestatus, pipestatus.client, pipestatus.watch, pipestatus.vendors\n"
        "from pipestatus import Client\nassert Client"
    )
    assert "rich" not in loaded
    assert "rich" in _loaded_after("import pipestatus.cli")
