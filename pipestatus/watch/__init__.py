"""Watching, in three parts:

* :mod:`~pipestatus.watch.tracker` (pure): what an observation of a target means, decided by
  one table, and the small memory a watch keeps of each target;
* :mod:`~pipestatus.watch.pace` (pure): when each target is polled next;
* :mod:`~pipestatus.watch.scheduler`: the ``Watcher``, which owns the event loop and polls
  while it is iterated.
"""

from __future__ import annotations

from pipestatus.watch.scheduler import Watcher
from pipestatus.watch.tracker import classify, signature

__all__ = ["Watcher", "classify", "signature"]
