"""The per-target tracker: what an observation means, decided by one table. Pure: no asyncio,
no clock, no I/O (h11's ``_state.py`` is the model).

A watch remembers a small :class:`Memory` of each target. An observation (the target's latest
``Run``, or the ``PipestatusError`` it met) goes into :func:`observe` with that memory; the kind
of change to yield (or ``None``) and the new memory come out::

    step = observe(memory, outcome, errors=False)
    step.kind      # ChangeKind.BROKE, say, or None: nothing to yield
    step.memory    # what to remember for the next observation

Two steps decide, and only these:

1. ``_seen_run`` / ``_seen_error`` name what the observation *is*, against the memory: the
   first run seen, the same run unchanged, another run started, a run that has just finished
   with a failure, a finish already announced, an error unlike the last one shown...
   (:class:`Seen`); they name no kind;
2. :data:`KINDS`, read top to bottom, says what that means given how the last run to finish
   ended (:class:`Last`). That table is the whole rule; nothing else names a kind.

The memory is plain data (identities, signatures, statuses, an error's class and message), so
it can be stored and read back: a watch that starts from a stored memory goes on where the
last one stopped. Runs that finished while nobody watched (read from a vendor's history) go
through :func:`catch_up`, which names them by the same table. A pipeline that left a watched
scope is one more :class:`Seen` member (``LEFT``, named by :func:`depart`) and one more row
(``REMOVED``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

import attrs

from pipestatus.errors import PipestatusError
from pipestatus.model import ChangeKind, Run
from pipestatus.status import Status

__all__ = [
    "KINDS",
    "ErrorMark",
    "Last",
    "Memory",
    "RunKey",
    "Seen",
    "Signature",
    "Step",
    "catch_up",
    "classify",
    "depart",
    "observe",
    "row_of",
    "run_key",
    "signature",
]

#: Which run a run is (see :func:`run_key`).
RunKey = tuple[object, ...]
#: Everything a watch compares of a run (see :func:`signature`).
Signature = tuple[object, ...]
#: An error as a watch compares it: its class (``module.QualName``) and its message.
ErrorMark = tuple[str, str]

# --- identity and signature --------------------------------------------------------------------


def run_key(run: Run) -> RunKey:
    """Which run this is: its ID and number, or (v4, which has neither) its jobs' IDs."""
    if run.run_id is not None or run.number is not None:
        return (run.run_id, run.number)
    return tuple(job.id for job in run.jobs)


def signature(run: Run) -> Signature:
    """Everything a watch compares: the run's identity and every status and raw status."""
    return _signature(run, run_key(run))


def _signature(run: Run, key: RunKey) -> Signature:
    return (
        key,
        run.status,
        run.raw_status,
        tuple(
            (
                stage.id,
                stage.status,
                stage.raw_status,
                tuple((job.id, job.status, job.raw_status) for job in stage.jobs),
            )
            for stage in run.stages
        ),
    )


def _mark(error: PipestatusError) -> ErrorMark:
    cls = type(error)
    return (f"{cls.__module__}.{cls.__qualname__}", str(error))


# --- what is remembered ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Memory:
    """What a watch remembers of one target between observations; plain values only.

    ``Memory()`` is a target never observed.
    """

    run: RunKey | None = None  # which run was seen last
    status: Status | None = None  # ...its status
    sig: Signature | None = None  # ...and its signature (None: no run seen yet)
    final: Status | None = None  # the final status of the last run seen to finish
    final_run: RunKey | None = None  # ...and which run that was
    shown_error: ErrorMark | None = None  # the error last yielded, while nothing came after it


# --- the table ---------------------------------------------------------------------------------


class Seen(enum.StrEnum):
    """What an observation is, against what the tracker remembers of its target."""

    FIRST = "first"  # the first run seen of this target
    UNCHANGED = "unchanged"  # the run seen last, with the same signature
    UNCHANGED_AFTER_ERROR = "unchanged_after_error"  # ...after an error was yielded
    STARTED = "started"  # another run, not finished
    MOVED = "moved"  # the run seen last changed, and has not just finished
    FAILED = "failed"  # a run has just finished failed or timed out
    SUCCEEDED = "succeeded"  # a run has just finished with success
    ENDED = "ended"  # a run has just finished otherwise (canceled, skipped)
    FINISHED_AGAIN = "finished_again"  # the finish announced, seen again after something else
    ERROR = "error"  # an error unlike the one last yielded
    ERROR_AGAIN = "error_again"  # the error last yielded, again
    ERROR_UNSHOWN = "error_unshown"  # an error in a watch that yields none (errors=False)
    LEFT = "left"  # the target left the scope it was watched through (see :func:`depart`)


class Last(enum.StrEnum):
    """How the last run seen to finish ended; ``ANY`` is a row that holds whatever it was."""

    NONE = "none"  # no run seen to finish yet
    SUCCESS = "success"
    FAILURE = "failure"  # failed or timed out
    OTHER = "other"  # canceled or skipped
    ANY = "any"  # (in a row of the table) whatever it was


# fmt: off
#: What an observation means, by what it is and how the last run to finish ended: the row of
#: that exact pair, else the row of ``Last.ANY``, gives the kind to yield (``None``: nothing).
KINDS: Final[Mapping[tuple[Seen, Last], ChangeKind | None]] = {
    # what the observation is      how the last finish ended   the kind yielded
    (Seen.FIRST,                   Last.ANY):                  ChangeKind.FIRST,
    (Seen.UNCHANGED,               Last.ANY):                  None,
    (Seen.UNCHANGED_AFTER_ERROR,   Last.ANY):                  ChangeKind.RECOVERED,
    (Seen.STARTED,                 Last.ANY):                  ChangeKind.STARTED,
    (Seen.MOVED,                   Last.ANY):                  ChangeKind.MOVED,
    (Seen.FAILED,                  Last.FAILURE):              ChangeKind.STILL_FAILING,
    (Seen.FAILED,                  Last.SUCCESS):              ChangeKind.BROKE,
    (Seen.FAILED,                  Last.ANY):                  ChangeKind.FINISHED,
    (Seen.SUCCEEDED,               Last.FAILURE):              ChangeKind.FIXED,
    (Seen.SUCCEEDED,               Last.ANY):                  ChangeKind.FINISHED,
    (Seen.ENDED,                   Last.ANY):                  ChangeKind.FINISHED,
    # A run's finish is announced once: moved away (a garbled answer read as an unknown
    # word, say) and back is no second finish.
    (Seen.FINISHED_AGAIN,          Last.ANY):                  ChangeKind.MOVED,
    (Seen.ERROR,                   Last.ANY):                  ChangeKind.ERROR,
    (Seen.ERROR_AGAIN,             Last.ANY):                  None,
    (Seen.ERROR_UNSHOWN,           Last.ANY):                  None,
    (Seen.LEFT,                    Last.ANY):                  ChangeKind.REMOVED,
}
# fmt: on


def row_of(seen: Seen, last: Last) -> tuple[Seen, Last]:
    """The row of :data:`KINDS` that decides ``(seen, last)``: its own, else its ``Last.ANY``."""
    exact = (seen, last)
    return exact if exact in KINDS else (seen, Last.ANY)


#: :data:`KINDS` with every ``Last.ANY`` row spelled out: (seen, last) -> (its row, its kind),
#: so one lookup decides an observation.
_DECIDE: Final[Mapping[tuple[Seen, Last], tuple[tuple[Seen, Last], ChangeKind | None]]] = {
    (seen, last): (row_of(seen, last), KINDS[row_of(seen, last)])
    for seen in Seen
    for last in Last
    if last is not Last.ANY
}


# --- naming an observation ---------------------------------------------------------------------


def _last(final: Status | None) -> Last:
    if final is None:
        return Last.NONE
    if final is Status.FAILED or final is Status.TIMEDOUT:
        return Last.FAILURE
    return Last.SUCCESS if final is Status.SUCCESS else Last.OTHER


def _finished(status: Status) -> Seen:
    if status is Status.FAILED or status is Status.TIMEDOUT:
        return Seen.FAILED
    return Seen.SUCCEEDED if status is Status.SUCCESS else Seen.ENDED


def _changed(memory: Memory, run: Run, key: RunKey) -> Seen:
    """Name a run whose signature differs from the one of the run seen last."""
    status = run.status
    if status.is_terminal and (key, status) == (memory.final_run, memory.final):
        return Seen.FINISHED_AGAIN
    another = key != memory.run
    previous = memory.status
    if status.is_terminal and (
        another or previous is None or not previous.is_terminal or previous is not status
    ):
        return _finished(status)
    return Seen.STARTED if another else Seen.MOVED


def _seen_error(memory: Memory, error: PipestatusError, *, errors: bool) -> Seen:
    if not errors:
        return Seen.ERROR_UNSHOWN
    return Seen.ERROR_AGAIN if memory.shown_error == _mark(error) else Seen.ERROR


def _seen_run(memory: Memory, run: Run, key: RunKey, sig: Signature) -> Seen:
    if memory.sig is None:
        return Seen.FIRST
    if sig == memory.sig:
        return Seen.UNCHANGED if memory.shown_error is None else Seen.UNCHANGED_AFTER_ERROR
    return _changed(memory, run, key)


# --- one step ----------------------------------------------------------------------------------


class Step(NamedTuple):
    """What one observation did: the row of :data:`KINDS` that decided, the kind to yield
    (``None``: nothing), and the memory to keep. (A named tuple: one is made per observation,
    and it is the cheapest immutable value to make.)"""

    row: tuple[Seen, Last]
    kind: ChangeKind | None
    memory: Memory

    @property
    def seen(self) -> Seen:
        """What the observation was."""
        return self.row[0]

    @property
    def unchanged(self) -> bool:
        """The run seen last, unchanged (whether or not its recovery is yielded)."""
        seen = self.row[0]
        return seen is Seen.UNCHANGED or seen is Seen.UNCHANGED_AFTER_ERROR


def observe(memory: Memory, outcome: Run | PipestatusError, *, errors: bool) -> Step:
    """One observation of a target: name it, look it up in :data:`KINDS`, and remember it.

    ``errors``: whether the watch yields errors (``watch(..., errors=True)``); an error it
    does not yield is not remembered as shown either.
    """
    last = _last(memory.final)
    if isinstance(outcome, PipestatusError):
        row, kind = _DECIDE[_seen_error(memory, outcome, errors=errors), last]
        if kind is not None:  # yielded: the error to compare the next one with
            memory = attrs.evolve(memory, shown_error=_mark(outcome))
        return Step(row=row, kind=kind, memory=memory)
    key = run_key(outcome)
    sig = _signature(outcome, key)
    row, kind = _DECIDE[_seen_run(memory, outcome, key, sig), last]
    if kind is ChangeKind.RECOVERED:
        memory = attrs.evolve(memory, shown_error=None)
    elif kind is not None:  # a change of the run: remember it (and its end, if it ended)
        status = outcome.status
        terminal = status.is_terminal
        memory = Memory(
            run=key,
            status=status,
            sig=sig,
            final=status if terminal else memory.final,
            final_run=key if terminal else memory.final_run,
            shown_error=None,
        )
    return Step(row=row, kind=kind, memory=memory)


def depart(memory: Memory) -> Step:
    """The target left the scope it was watched through (a listing no longer has it): the
    row of :data:`KINDS` for :attr:`Seen.LEFT` names the kind; nothing is remembered after."""
    row, kind = _DECIDE[Seen.LEFT, _last(memory.final)]
    return Step(row=row, kind=kind, memory=Memory())


def catch_up(
    memory: Memory, finished: Iterable[Run], *, latest: RunKey | None
) -> list[tuple[Step, Run]]:
    """The finishes a watch missed while it was down, oldest first, each named by :data:`KINDS`
    as if it had been seen (a failure after the remembered success is BROKE, never FIRST).

    ``finished``: runs from the vendor's history, oldest first; ``latest``: the key of the run
    the watch sees now, which :func:`observe` names instead. Runs not terminal, the latest one,
    and finishes already announced are left out. Each step comes with its run; the last step's
    memory is where the latest observation starts from.
    """
    steps: list[tuple[Step, Run]] = []
    for run in finished:
        status = run.status
        key = run_key(run)
        if not status.is_terminal or key == latest:
            continue
        if (key, status) == (memory.final_run, memory.final):
            continue  # announced already (before the restart, or earlier in this history)
        row, kind = _DECIDE[_finished(status), _last(memory.final)]
        memory = Memory(
            run=key,
            status=status,
            sig=_signature(run, key),
            final=status,
            final_run=key,
            shown_error=None,
        )
        steps.append((Step(row=row, kind=kind, memory=memory), run))
    return steps


def classify(previous: Run | None, current: Run, last_final: Status | None) -> ChangeKind:
    """Name the change from ``previous`` to ``current`` (which differ) by :data:`KINDS`.
    ``last_final`` is the final status of the run before ``current``'s finish, if one was seen
    (so a success after a failure is FIXED).

    Unlike :func:`observe` it knows nothing of which run's finish was announced already.
    """
    if previous is None:
        seen = Seen.FIRST
    else:
        memory = Memory(run=run_key(previous), status=previous.status, final=last_final)
        seen = _changed(memory, current, run_key(current))
    kind = KINDS[row_of(seen, _last(last_final))]
    assert kind is not None  # every row a changed run can reach names a kind
    return kind
