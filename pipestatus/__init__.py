"""pipestatus: the status of every CI/CD pipeline, whatever vendor runs it, as one model.

The public API (see README.md)::

    from pipestatus import Client, Status, Run, Stage, Job, Target, Change, Pipeline

Importing the package is cheap: each name is loaded on first use, so ``import pipestatus.model``
or a vendor's ``parse_*`` functions load no network library (``Client`` brings aiohttp).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pipestatus._version import __version__

if TYPE_CHECKING:
    from pipestatus.client import Client
    from pipestatus.model import Change, Job, Pipeline, Run, Stage, Target
    from pipestatus.status import Status

__all__ = [
    "Change",
    "Client",
    "Job",
    "Pipeline",
    "Run",
    "Stage",
    "Status",
    "Target",
    "__version__",
]

_HOMES = {
    "Change": "pipestatus.model",
    "Client": "pipestatus.client",
    "Job": "pipestatus.model",
    "Pipeline": "pipestatus.model",
    "Run": "pipestatus.model",
    "Stage": "pipestatus.model",
    "Status": "pipestatus.status",
    "Target": "pipestatus.model",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipestatus' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
