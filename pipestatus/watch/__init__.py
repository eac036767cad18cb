"""Watching, in three parts:

* :mod:`~pipestatus.watch.tracker` (pure): what an observation of a target means, decided by
  one table, and the small memory a watch keeps of each target;
* :mod:`~pipestatus.watch.pace` (pure): when each target is polled next;
* :mod:`~pipestatus.watch.scheduler`: the ``Watcher``, which owns the event loop and polls
  while it is iterated, with its parts :mod:`~pipestatus.watch.scoping` (scopes re-expanded),
  :mod:`~pipestatus.watch.ending` (ended runs read in detail, in order) and
  :mod:`~pipestatus.watch.slots` (fairness under overload).

With a state store (:mod:`pipestatus.store`) a watch also remembers, through the modules
beside them: :mod:`~pipestatus.watch.records` (what is stored, and the protocol a store
keeps), :mod:`~pipestatus.watch.codec` and :mod:`~pipestatus.watch.keys` (its JSON, and the
targets' keys), :mod:`~pipestatus.watch.durable` (the queues of writes, acknowledgements and
loads, and outages), :mod:`~pipestatus.watch.remembering` (the scheduler's store side),
:mod:`~pipestatus.watch.history` (the run-history seam) and :mod:`~pipestatus.watch.replicas`
(which replica polls which target).
"""

from __future__ import annotations

from pipestatus.watch.scheduler import Watcher
from pipestatus.watch.tracker import classify, signature

__all__ = ["Watcher", "classify", "signature"]
