"""Chat notifications of ``pipestatus serve``: which rule sends which change
(:mod:`.rules`), what each sink is sent (:mod:`.messages`), and the queues that send it
without slowing the watch (:mod:`.dispatch`)."""

from __future__ import annotations

from pipestatus.serve.notify.dispatch import Notifier, SinkState

__all__ = ["Notifier", "SinkState"]
