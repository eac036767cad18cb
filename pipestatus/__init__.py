"""pipestatus: the status of every CI/CD pipeline, whatever vendor runs it, as one model.

The public API (see README.md)::

    from pipestatus import Client, Status, Run, Stage, Job, Target, Change
"""

from pipestatus._version import __version__
from pipestatus.client import Client
from pipestatus.model import Change, Job, Run, Stage, Target
from pipestatus.status import Status

__all__ = [
    "Change",
    "Client",
    "Job",
    "Run",
    "Stage",
    "Status",
    "Target",
    "__version__",
]
