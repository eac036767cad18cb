"""``/metrics``: the Prometheus text format, through ``prometheus-client`` with a registry of
the service's own (never the process-wide default one).

Names follow Prometheus' rules: base units (``_seconds``), ``_total`` on counters, a
``status`` label rather than one metric per status, only low-cardinality labels (a pipeline's
configured name, account and vendor; never a branch, a run ID or a vendor's message).

Per pipeline (labels ``pipeline``, ``account``, ``vendor``), read from the board at each scrape:

* ``pipestatus_pipeline_status{status=...}``: one series per status word (the seven statuses
  and ``error``), 1 for the current one (as gitlab-ci-pipelines-exporter does);
* ``pipestatus_pipeline_up``: 1 when the last read succeeded, 0 when it failed or none came yet;
* ``pipestatus_pipeline_run_duration_seconds``: the last finished run's duration;
* ``pipestatus_pipeline_run_number``: the latest run's number;
* ``pipestatus_pipeline_run_finished_timestamp_seconds``: when the last finished run ended.

The service's own health: ``pipestatus_requests_total{vendor,outcome}``,
``pipestatus_rate_limited_total{vendor}`` (429s), ``pipestatus_retries_total{vendor}``,
``pipestatus_request_duration_seconds{vendor}`` (a histogram of attempts), fed by the
transport's ``on_attempt``; ``pipestatus_targets``, ``pipestatus_targets_overdue``,
``pipestatus_account_up{account}``, ``pipestatus_watch_up`` and, per notification sink,
``pipestatus_notifications_total{sink,outcome}``, ``pipestatus_notification_queue_length`` and
``pipestatus_notification_sink_up``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipestatus._transport import Attempt
from pipestatus.cli.text import ERROR
from pipestatus.model import Run
from pipestatus.serve.board import Board
from pipestatus.serve.notify.dispatch import SinkState
from pipestatus.status import Status

__all__ = ["CONTENT_TYPE", "STATUS_WORDS", "Metrics", "attempt_outcome"]

#: The content type of the text format.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: The ``status`` label's values.
STATUS_WORDS: Final = (*(status.value for status in Status), ERROR)
#: Buckets of the request histogram, in seconds.
BUCKETS: Final = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PIPELINE_LABELS: Final = ("pipeline", "account", "vendor")


def attempt_outcome(outcome: int | str) -> str:
    """An attempt's ``outcome`` label: ``success``, ``redirect``, ``rate_limited``,
    ``client_error``, ``server_error``, ``timeout`` or ``connection_error``."""
    if isinstance(outcome, str):
        return "timeout" if outcome == "RequestTimeout" else "connection_error"
    if outcome == 429:
        return "rate_limited"
    if outcome < 300 or outcome == 304:
        return "success"
    if outcome < 400:
        return "redirect"
    return "client_error" if outcome < 500 else "server_error"


class _BoardCollector(Collector):
    """The per-pipeline and watch gauges, computed from the board at each scrape."""

    def __init__(self, board: Board, sinks: Callable[[], Sequence[SinkState]]) -> None:
        self.board = board
        self.sinks = sinks

    def collect(self) -> Iterator[Metric]:
        board = self.board
        status = GaugeMetricFamily(
            "pipestatus_pipeline_status",
            "The pipeline's latest status: 1 for the current status word, 0 for the others",
            labels=(*_PIPELINE_LABELS, "status"),
        )
        up = GaugeMetricFamily(
            "pipestatus_pipeline_up",
            "1 when the pipeline's last read succeeded, 0 when it failed or none came yet",
            labels=_PIPELINE_LABELS,
        )
        duration = GaugeMetricFamily(
            "pipestatus_pipeline_run_duration_seconds",
            "The duration of the pipeline's last finished run",
            labels=_PIPELINE_LABELS,
        )
        number = GaugeMetricFamily(
            "pipestatus_pipeline_run_number",
            "The number of the pipeline's latest run",
            labels=_PIPELINE_LABELS,
        )
        finished = GaugeMetricFamily(
            "pipestatus_pipeline_run_finished_timestamp_seconds",
            "When the pipeline's last finished run ended (Unix time)",
            labels=_PIPELINE_LABELS,
        )
        for entry in board.entries:
            item = entry.item
            labels = [item.label, item.account, item.vendor]
            outcome = entry.outcome
            word = None
            if isinstance(outcome, Run):
                word = outcome.status.value
            elif outcome is not None:
                word = ERROR
            for candidate in STATUS_WORDS:
                status.add_metric([*labels, candidate], 1.0 if candidate == word else 0.0)
            up.add_metric(labels, 1.0 if isinstance(outcome, Run) else 0.0)
            if isinstance(outcome, Run) and outcome.number is not None:
                number.add_metric(labels, float(outcome.number))
            last = entry.last_finished
            if last is not None and last.duration is not None:
                duration.add_metric(labels, last.duration.total_seconds())
            if last is not None and last.finished_at is not None:
                finished.add_metric(labels, last.finished_at.timestamp())
        yield from (status, up, duration, number, finished)

        yield GaugeMetricFamily(
            "pipestatus_targets", "Pipelines the service follows", value=len(board.entries)
        )
        yield GaugeMetricFamily(
            "pipestatus_targets_overdue",
            "Pipelines whose poll is overdue (a request hanging, or a starved loop)",
            value=len(board.stale()),
        )
        yield GaugeMetricFamily(
            "pipestatus_watch_up", "1 while the watch runs", value=1.0 if board.running else 0.0
        )
        accounts = GaugeMetricFamily(
            "pipestatus_account_up",
            "0 when none of the account's pipelines can be read (unreachable, token refused)",
            labels=("account",),
        )
        down = set(board.accounts_down())
        for name in board.config.accounts:
            accounts.add_metric([name], 0.0 if name in down else 1.0)
        yield accounts
        yield from self._sinks()

    def _sinks(self) -> Iterator[Metric]:
        sent = CounterMetricFamily(
            "pipestatus_notifications",
            "Notifications by sink and outcome (sent, failed after every retry, dropped)",
            labels=("sink", "outcome"),
        )
        queue = GaugeMetricFamily(
            "pipestatus_notification_queue_length",
            "Notifications waiting to be sent",
            labels=("sink",),
        )
        sink_up = GaugeMetricFamily(
            "pipestatus_notification_sink_up",
            "0 while the sink's last message failed after every retry",
            labels=("sink",),
        )
        for state in self.sinks():
            for outcome, value in (
                ("sent", state.sent),
                ("failed", state.failed),
                ("dropped", state.dropped),
            ):
                sent.add_metric([state.name, outcome], float(value))
            queue.add_metric([state.name], float(state.queued))
            sink_up.add_metric([state.name], 0.0 if state.failing else 1.0)
        yield from (sent, queue, sink_up)


class Metrics:
    """The service's registry: the transport's counters (made first: the client is built with
    :meth:`on_attempt`), then the board's gauges (:meth:`add_board`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pipestatus_requests",
            "HTTP request attempts to the vendors' APIs, by vendor and outcome",
            ("vendor", "outcome"),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "pipestatus_rate_limited",
            "Attempts the vendor answered with 429 Too Many Requests",
            ("vendor",),
            registry=self.registry,
        )
        self.retries = Counter(
            "pipestatus_retries",
            "Attempts after the first of a request (retries)",
            ("vendor",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "pipestatus_request_duration_seconds",
            "Seconds per request attempt, answer and body included",
            ("vendor",),
            buckets=BUCKETS,
            registry=self.registry,
        )

    def add_board(self, board: Board, sinks: Callable[[], Sequence[SinkState]] = tuple) -> None:
        """Report ``board``'s pipelines and the ``sinks``' states too."""
        self.registry.register(_BoardCollector(board, sinks))

    def on_attempt(self, attempt: Attempt) -> None:
        """Count one attempt (the transport's ``on_attempt``)."""
        self.requests.labels(attempt.vendor, attempt_outcome(attempt.outcome)).inc()
        if attempt.outcome == 429:
            self.rate_limited.labels(attempt.vendor).inc()
        if attempt.number > 1:
            self.retries.labels(attempt.vendor).inc()
        self.latency.labels(attempt.vendor).observe(attempt.seconds)

    def render(self) -> bytes:
        """The text format, as ``/metrics`` answers it."""
        return generate_latest(self.registry)
