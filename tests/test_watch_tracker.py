"""The pure per-target tracker: every row of its table, the announced-once rule, errors shown or
not, recoveries, and a memory made of plain values. No event loop, no network."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from pipestatus import Job, Run, Stage, Status
from pipestatus.errors import (
    NotFoundError,
    PipestatusError,
    RequestTimeout,
    ServerError,
)
from pipestatus.model import ChangeKind as K
from pipestatus.watch import classify, signature
from pipestatus.watch.tracker import (
    KINDS,
    Last,
    Memory,
    Seen,
    Step,
    depart,
    observe,
    run_key,
)

P, R, OK, F, C, S, T = (
    Status.PENDING,
    Status.RUNNING,
    Status.SUCCESS,
    Status.FAILED,
    Status.CANCELED,
    Status.SKIPPED,
    Status.TIMEDOUT,
)
Outcome = Run | PipestatusError


def run(
    number: int,
    status: Status,
    *,
    raw: str | None = None,
    job: Status | None = None,
    job_raw: str | None = None,
) -> Run:
    """Run ``number`` of one pipeline, with one stage of one job (its status as the run's)."""
    job_status = job or status
    return Run(
        vendor="toy",
        pipeline_id="p",
        run_id=f"r{number}",
        number=number,
        status=status,
        raw_status=raw if raw is not None else status.value.upper(),
        stages=(
            Stage(
                id="s",
                name="build",
                order=0,
                status=job_status,
                raw_status=job_raw or job_status.value.upper(),
                jobs=(Job(id="j", name="job", status=job_status, raw_status=job_raw),),
            ),
        ),
    )


def v4_run(job_ids: Sequence[str], status: Status) -> Run:
    """A run as v4 reports it: no run ID, no number; only its jobs say which run it is."""
    jobs = tuple(Job(id=i, name=None, status=status, raw_status=status.value) for i in job_ids)
    stage = Stage(id="s", name=None, order=0, status=status, raw_status=None, jobs=jobs)
    return Run(
        vendor="toy",
        pipeline_id="p",
        run_id=None,
        number=None,
        status=status,
        raw_status=None,
        stages=(stage,),
    )


def gone() -> NotFoundError:
    return NotFoundError(status=404, vendor="toy", message="no such pipeline")


def down() -> ServerError:
    return ServerError(status=503, vendor="toy", message="maintenance")


def replay(outcomes: Iterable[Outcome], *, errors: bool = True) -> tuple[Memory, list[Step]]:
    """Feed ``outcomes`` to the tracker from a target never observed; the memory and steps."""
    memory, steps = Memory(), []
    for outcome in outcomes:
        step = observe(memory, outcome, errors=errors)
        memory = step.memory
        steps.append(step)
    return memory, steps


def kinds(outcomes: Iterable[Outcome], *, errors: bool = True) -> list[K | None]:
    return [step.kind for step in replay(outcomes, errors=errors)[1]]


# --- every row of the table --------------------------------------------------------------------

#: (history, observation, the kind yielded, the row that decides, errors=...), worked out by hand.
ROWS: list[Any] = [
    pytest.param([], run(1, R), K.FIRST, (Seen.FIRST, Last.ANY), True, id="first-running"),
    pytest.param([], run(1, F), K.FIRST, (Seen.FIRST, Last.ANY), True, id="first-failed"),
    pytest.param(
        [gone()], run(1, R), K.FIRST, (Seen.FIRST, Last.ANY), True, id="first-after-an-error"
    ),
    pytest.param(
        [run(1, R)], run(1, R), None, (Seen.UNCHANGED, Last.ANY), True, id="unchanged-running"
    ),
    pytest.param(
        [run(1, OK)], run(1, OK), None, (Seen.UNCHANGED, Last.ANY), True, id="unchanged-final"
    ),
    pytest.param(
        [run(1, R), down()],
        run(1, R),
        K.RECOVERED,
        (Seen.UNCHANGED_AFTER_ERROR, Last.ANY),
        True,
        id="recovered",
    ),
    pytest.param(
        [run(1, R)], run(2, P), K.STARTED, (Seen.STARTED, Last.ANY), True, id="started-after-run"
    ),
    pytest.param(
        [run(1, OK)], run(2, R), K.STARTED, (Seen.STARTED, Last.ANY), True, id="started-after-ok"
    ),
    pytest.param([run(1, P)], run(1, R), K.MOVED, (Seen.MOVED, Last.ANY), True, id="moved-status"),
    pytest.param(
        [run(1, R, raw="QUEUED")],
        run(1, R, raw="BUILDING"),
        K.MOVED,
        (Seen.MOVED, Last.ANY),
        True,
        id="moved-raw-status",
    ),
    pytest.param(
        [run(1, R, job=P)], run(1, R, job=R), K.MOVED, (Seen.MOVED, Last.ANY), True, id="moved-job"
    ),
    pytest.param(
        [run(1, F), run(2, R)],
        run(2, F),
        K.STILL_FAILING,
        (Seen.FAILED, Last.FAILURE),
        True,
        id="still-failing",
    ),
    pytest.param(
        [run(1, T)],
        run(2, F),
        K.STILL_FAILING,
        (Seen.FAILED, Last.FAILURE),
        True,
        id="still-failing-straight-after-timeout",
    ),
    pytest.param(
        [run(1, OK), run(2, R)], run(2, F), K.BROKE, (Seen.FAILED, Last.SUCCESS), True, id="broke"
    ),
    pytest.param(
        [run(1, OK)], run(2, T), K.BROKE, (Seen.FAILED, Last.SUCCESS), True, id="broke-by-timeout"
    ),
    pytest.param(
        [run(1, R)], run(1, F), K.FINISHED, (Seen.FAILED, Last.ANY), True, id="failed-first-end"
    ),
    pytest.param(
        [run(1, C), run(2, R)],
        run(2, F),
        K.FINISHED,
        (Seen.FAILED, Last.ANY),
        True,
        id="failed-after-canceled",
    ),
    pytest.param(
        [run(1, F), run(2, R)],
        run(2, OK),
        K.FIXED,
        (Seen.SUCCEEDED, Last.FAILURE),
        True,
        id="fixed",
    ),
    pytest.param(
        [run(1, F)],
        run(1, OK),
        K.FIXED,
        (Seen.SUCCEEDED, Last.FAILURE),
        True,
        id="fixed-by-a-retry-of-the-same-run",
    ),
    pytest.param(
        [run(1, OK), run(2, R)],
        run(2, OK),
        K.FINISHED,
        (Seen.SUCCEEDED, Last.ANY),
        True,
        id="success-after-success",
    ),
    pytest.param(
        [run(1, R)],
        run(1, OK),
        K.FINISHED,
        (Seen.SUCCEEDED, Last.ANY),
        True,
        id="success-first-end",
    ),
    pytest.param(
        [run(1, S)],
        run(2, OK),
        K.FINISHED,
        (Seen.SUCCEEDED, Last.ANY),
        True,
        id="success-after-skipped",
    ),
    pytest.param([run(1, R)], run(1, C), K.FINISHED, (Seen.ENDED, Last.ANY), True, id="canceled"),
    pytest.param(
        [run(1, F), run(2, R)],
        run(2, C),
        K.FINISHED,
        (Seen.ENDED, Last.ANY),
        True,
        id="canceled-after-failure",
    ),
    pytest.param(
        [run(1, R), run(1, F), run(1, P, raw="EXPLODED")],
        run(1, F),
        K.MOVED,
        (Seen.FINISHED_AGAIN, Last.ANY),
        True,
        id="finish-announced-once",
    ),
    pytest.param(
        [run(1, OK)],
        run(1, OK, job_raw="DONE"),
        K.MOVED,
        (Seen.FINISHED_AGAIN, Last.ANY),
        True,
        id="finished-run-changes-a-job-word",
    ),
    pytest.param([], gone(), K.ERROR, (Seen.ERROR, Last.ANY), True, id="error"),
    pytest.param(
        [run(1, R)], gone(), K.ERROR, (Seen.ERROR, Last.ANY), True, id="error-after-a-run"
    ),
    pytest.param([down()], gone(), K.ERROR, (Seen.ERROR, Last.ANY), True, id="another-error"),
    pytest.param(
        [down()], down(), None, (Seen.ERROR_AGAIN, Last.ANY), True, id="the-same-error-again"
    ),
    pytest.param(
        [run(1, R)], down(), None, (Seen.ERROR_UNSHOWN, Last.ANY), False, id="errors-not-shown"
    ),
]


@pytest.mark.parametrize(("history", "now", "kind", "row", "errors"), ROWS)
def test_each_row_names_its_kind(
    history: list[Outcome], now: Outcome, kind: K | None, row: tuple[Seen, Last], errors: bool
) -> None:
    """Each observation, after each kind of history, is decided by its row and yields its kind."""
    memory, _ = replay(history, errors=errors)
    step = observe(memory, now, errors=errors)
    assert (step.row, step.kind) == (row, kind)


#: What :func:`depart` meets: a history, the row it decides and the kind.
DEPARTS = [
    pytest.param([], (Seen.LEFT, Last.ANY), K.REMOVED, id="never-seen"),
    pytest.param([run(1, F)], (Seen.LEFT, Last.ANY), K.REMOVED, id="after-a-failure"),
    pytest.param([run(1, OK), run(2, R)], (Seen.LEFT, Last.ANY), K.REMOVED, id="while-running"),
]


@pytest.mark.parametrize(("history", "row", "kind"), DEPARTS)
def test_a_target_that_left_its_scope_is_removed(
    history: list[Outcome], row: tuple[Seen, Last], kind: K
) -> None:
    """A target leaving its scope is the LEFT row, kind REMOVED, and is forgotten after."""
    memory, _ = replay(history, errors=False)
    step = depart(memory)
    assert (step.row, step.kind) == (row, kind)
    assert step.memory == Memory()


def test_every_row_of_the_table_is_exercised() -> None:
    """The cases above reach every row of ``KINDS``, and nothing outside it."""
    reached = {param.values[3] for param in ROWS} | {param.values[1] for param in DEPARTS}
    assert reached == set(KINDS)


def test_every_observation_has_a_row_for_any_history() -> None:
    """Whatever an observation is, the table has a ``Last.ANY`` row for it: no lookup fails."""
    assert {seen for seen, last in KINDS if last is Last.ANY} == set(Seen)


# --- the rules across several observations -----------------------------------------------------


def test_a_bot_reads_fixed_broke_and_still_failing() -> None:
    """A history of runs gives first, started, fixed, broke, started, still failing."""
    history = [run(1, F), run(2, R), run(2, OK), run(3, F), run(4, R), run(4, T)]
    assert kinds(history) == [K.FIRST, K.STARTED, K.FIXED, K.BROKE, K.STARTED, K.STILL_FAILING]


def test_a_finish_is_announced_once_per_run() -> None:
    """A run's end seen again after a garbled answer is a move; the next run's end is its own."""
    history = [run(7, R), run(7, F), run(7, P, raw="EXPLODED"), run(7, F), run(8, F)]
    assert kinds(history) == [K.FIRST, K.FINISHED, K.MOVED, K.MOVED, K.STILL_FAILING]


def test_repeated_observations_yield_once() -> None:
    """Running seen five times then success: first, finished, and nothing in between."""
    history = [run(1, R)] * 5 + [run(1, OK)] * 3
    assert kinds(history) == [K.FIRST, None, None, None, None, K.FINISHED, None, None]


def test_errors_are_yielded_once_each_when_shown() -> None:
    """With errors shown, an error repeats silently until it differs; then a recovery, once."""
    history: list[Outcome] = [run(1, R), down(), down(), gone(), gone(), run(1, R), run(1, R)]
    assert kinds(history) == [K.FIRST, K.ERROR, None, K.ERROR, None, K.RECOVERED, None]


def test_an_error_of_another_class_with_the_same_message_is_another_error() -> None:
    """Two errors whose messages match but whose classes differ are two errors."""
    a = ServerError(status=404, vendor="toy")
    b = NotFoundError(status=404, vendor="toy")
    assert str(a) == str(b)
    assert kinds([a, b]) == [K.ERROR, K.ERROR]


def test_the_same_error_after_a_recovery_is_shown_again() -> None:
    """Once a run was yielded after an error, the same error again is a new change."""
    history: list[Outcome] = [run(1, R), down(), run(1, R), down()]
    assert kinds(history) == [K.FIRST, K.ERROR, K.RECOVERED, K.ERROR]


def test_a_changed_run_after_an_error_is_its_own_kind_not_recovered() -> None:
    """An error then a finished run: the finish is announced (previous was the error)."""
    history: list[Outcome] = [run(1, R), down(), run(1, OK), run(1, OK)]
    assert kinds(history) == [K.FIRST, K.ERROR, K.FINISHED, None]


def test_unshown_errors_leave_the_memory_as_it_was() -> None:
    """With errors=False an error changes nothing remembered, and no recovery follows."""
    memory, _ = replay([run(1, R)], errors=False)
    step = observe(memory, down(), errors=False)
    assert step.memory == memory
    assert kinds([run(1, R), down(), RequestTimeout("slow"), run(1, R)], errors=False) == [
        K.FIRST,
        None,
        None,
        None,
    ]


def test_unchanged_is_said_for_the_same_run_whether_or_not_it_recovers() -> None:
    """``Step.unchanged`` holds for the same run, recovered or not, and for nothing else."""
    _, steps = replay([run(1, R), run(1, R), down(), run(1, R), run(1, OK), gone()])
    assert [step.unchanged for step in steps] == [False, True, False, True, False, False]


def test_v4_runs_are_told_apart_by_their_jobs() -> None:
    """A v4 run (no ID, no number) is another run when its jobs' IDs differ."""
    history = [v4_run(["1", "2"], OK), v4_run(["3", "4"], R), v4_run(["3", "4"], F)]
    assert kinds(history) == [K.FIRST, K.STARTED, K.BROKE]
    assert run_key(history[1]) == ("3", "4")


# --- what is remembered ------------------------------------------------------------------------


def _plain(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, str | int | Status)


def test_the_memory_holds_only_plain_values() -> None:
    """After runs and errors, every remembered field is None, str, int, Status or tuples of them."""
    memory, _ = replay([run(1, F), run(2, R, raw="X"), down(), v4_run(["9"], OK)])
    fields = attrs.asdict(memory, recurse=False)
    assert fields["final"] is OK
    assert fields["shown_error"] is None
    assert all(_plain(value) for value in fields.values()), fields
    _, steps = replay([run(1, R), down()])
    assert steps[-1].memory.shown_error == ("pipestatus.errors.ServerError", str(down()))


def test_a_memory_rebuilt_from_its_fields_goes_on_where_it_stopped() -> None:
    """A memory copied field by field (as a store would) judges the next run the same way:
    a failure after a stored success is BROKE, not FIRST."""
    memory, _ = replay([run(1, OK)])
    stored = Memory(**attrs.asdict(memory, recurse=False))
    assert stored == memory
    assert observe(stored, run(1, OK), errors=False).kind is None
    assert observe(stored, run(2, F), errors=False).kind is K.BROKE


# --- classify and signature, as before ---------------------------------------------------------


def test_classify_names_a_change_from_two_runs_and_the_last_final() -> None:
    """``classify`` keeps its meaning: first, started, moved, fixed, broke, still failing."""
    assert classify(None, run(1, R), None) is K.FIRST
    assert classify(run(1, R), run(2, R), OK) is K.STARTED
    assert classify(run(1, P), run(1, R), None) is K.MOVED
    assert classify(run(1, R), run(1, OK), F) is K.FIXED
    assert classify(run(1, R), run(1, F), OK) is K.BROKE
    assert classify(run(1, F), run(2, T), F) is K.STILL_FAILING
    assert classify(run(1, R), run(1, C), F) is K.FINISHED


def test_classify_of_an_unchanged_final_run_is_a_move() -> None:
    """``classify`` is told the runs differ: the same final status of the same run is a move."""
    assert classify(run(1, OK), run(1, OK), OK) is K.MOVED


def test_signature_covers_every_status_and_raw_status() -> None:
    """A run's, a stage's or a job's status or raw status changes the signature; times do not."""
    base = signature(run(1, R))
    assert signature(run(1, R, raw="OTHER")) != base
    assert signature(run(1, R, job=P)) != base
    assert signature(run(1, R, job_raw="QUEUED")) != base
    assert signature(run(2, R)) != base
    later = attrs.evolve(run(1, R), started_at=datetime(2024, 5, 1, 8, 30, tzinfo=UTC))
    assert signature(later) == base
