"""What a watch stores, as JSON: the tracker's memory, runs, errors, records and events. Pure:
plain functions over plain values, no I/O (stores call them at their edge).

Targets are named by their keys (:mod:`pipestatus.watch.keys`).

Decoding refuses what this module did not write: :class:`CodecError` (a ``ValueError``) says
what is wrong; stores turn it into a :class:`~pipestatus.errors.StoreError` naming their file
or server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

from pipestatus.errors import (
    APIError,
    AuthError,
    ForbiddenError,
    NotFoundError,
    PipestatusError,
    RateLimitedError,
    RequestTimeout,
    ResponseError,
    ServerError,
    StoreError,
    StoreUnavailableError,
    TransportError,
    WaitTimeout,
)
from pipestatus.model import ChangeKind, Job, Run, Stage
from pipestatus.status import Status
from pipestatus.watch.records import Event, Outcome, Record
from pipestatus.watch.tracker import Memory

__all__ = [
    "CodecError",
    "decode_event",
    "decode_outcome",
    "decode_record",
    "dumps",
    "encode_event",
    "encode_outcome",
    "encode_record",
    "loads",
]

T = TypeVar("T")

#: The format of records and events; a reader refuses another.
FORMAT: Final = 1


class CodecError(ValueError):
    """Stored JSON that is not what this module writes."""


def dumps(value: object) -> str:
    """Compact JSON, UTF-8 text kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    """JSON text -> a value; :class:`CodecError` for anything else."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        problem = f"not JSON ({type(exc).__name__})"
    raise CodecError(problem)


# --- checked reads -----------------------------------------------------------------------------


def _get(data: Mapping[str, Any], name: str, kind: type[T] | tuple[type, ...]) -> T:
    value = data.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise CodecError(f"{name}: expected {getattr(kind, '__name__', kind)}")
    return value  # type: ignore[return-value]


def _opt(data: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise CodecError(f"{name}: expected {kind.__name__} or null")
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(data: Mapping[str, Any], name: str) -> datetime | None:
    text = _opt(data, name, str)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CodecError(f"{name}: not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise CodecError(f"{name}: a time without its offset")
    return value


def _enum(data: Mapping[str, Any], name: str, enum: Callable[[str], T]) -> T:
    word = _get(data, name, str)
    try:
        return enum(word)
    except ValueError:
        raise CodecError(f"{name}: unknown word {word!r}") from None


def _tuples(value: Any) -> Any:
    """JSON arrays back to the tuples the tracker compares (recursively)."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


# --- runs --------------------------------------------------------------------------------------


def _part(item: Run | Stage | Job) -> dict[str, Any]:
    return {
        "status": item.status.value,
        "raw_status": item.raw_status,
        "started_at": _iso(item.started_at),
        "finished_at": _iso(item.finished_at),
    }


def encode_run(run: Run) -> dict[str, Any]:
    """A run as JSON-ready data, every field kept."""
    return {
        "vendor": run.vendor,
        "pipeline_id": run.pipeline_id,
        "run_id": run.run_id,
        "number": run.number,
        **_part(run),
        "ref": run.ref,
        "sha": run.sha,
        "trigger": run.trigger,
        "url": run.url,
        "stages": [
            {
                "id": stage.id,
                "name": stage.name,
                "order": stage.order,
                **_part(stage),
                "jobs": [
                    {
                        "id": job.id,
                        "name": job.name,
                        **_part(job),
                        "url": job.url,
                        "ref": job.ref,
                        "sha": job.sha,
                        "build_id": job.build_id,
                        "stage_id": job.stage_id,
                        "stage_name": job.stage_name,
                    }
                    for job in stage.jobs
                ],
            }
            for stage in run.stages
        ],
    }


def _job(data: Mapping[str, Any]) -> Job:
    return Job(
        id=_get(data, "id", str),
        name=_opt(data, "name", str),
        status=_enum(data, "status", Status),
        raw_status=_opt(data, "raw_status", str),
        started_at=_time(data, "started_at"),
        finished_at=_time(data, "finished_at"),
        url=_opt(data, "url", str),
        ref=_opt(data, "ref", str),
        sha=_opt(data, "sha", str),
        build_id=_opt(data, "build_id", str),
        stage_id=_opt(data, "stage_id", str),
        stage_name=_opt(data, "stage_name", str),
    )


def _stage(data: Mapping[str, Any]) -> Stage:
    return Stage(
        id=_get(data, "id", str),
        name=_opt(data, "name", str),
        order=_get(data, "order", int),
        status=_enum(data, "status", Status),
        raw_status=_opt(data, "raw_status", str),
        started_at=_time(data, "started_at"),
        finished_at=_time(data, "finished_at"),
        jobs=tuple(_job(job) for job in _get(data, "jobs", list)),
    )


def decode_run(data: Mapping[str, Any]) -> Run:
    """The run :func:`encode_run` wrote."""
    return Run(
        vendor=_get(data, "vendor", str),
        pipeline_id=_get(data, "pipeline_id", str),
        run_id=_opt(data, "run_id", str),
        number=_opt(data, "number", int),
        status=_enum(data, "status", Status),
        raw_status=_opt(data, "raw_status", str),
        started_at=_time(data, "started_at"),
        finished_at=_time(data, "finished_at"),
        ref=_opt(data, "ref", str),
        sha=_opt(data, "sha", str),
        trigger=_opt(data, "trigger", str),
        url=_opt(data, "url", str),
        stages=tuple(_stage(stage) for stage in _get(data, "stages", list)),
    )


# --- errors ------------------------------------------------------------------------------------

#: The errors a watch can meet, by class name (a subclass defined elsewhere comes back as the
#: root, its name kept in the message).
_ERRORS: Final[Mapping[str, type[PipestatusError]]] = {
    cls.__name__: cls
    for cls in (
        PipestatusError,
        TransportError,
        RequestTimeout,
        APIError,
        AuthError,
        ForbiddenError,
        NotFoundError,
        RateLimitedError,
        ServerError,
        ResponseError,
        WaitTimeout,
        StoreError,
        StoreUnavailableError,
    )
}


def encode_error(error: PipestatusError) -> dict[str, Any]:
    """An error as its class name, its message and the fields its class takes."""
    data: dict[str, Any] = {"type": type(error).__name__, "text": str(error)}
    if isinstance(error, APIError):
        data.update(status=error.status, vendor=error.vendor, code=error.code)
        data["message"] = error.message
        if isinstance(error, RateLimitedError):
            data["retry_after"] = error.retry_after
    elif isinstance(error, ResponseError):
        data.update(message=error.message, vendor=error.vendor, path=error.path)
    return data


def decode_error(data: Mapping[str, Any]) -> PipestatusError:
    """The error :func:`encode_error` wrote, as its own class where it is one of ours."""
    name = _get(data, "type", str)
    text = _get(data, "text", str)
    cls = _ERRORS.get(name)
    if cls is None:
        return PipestatusError(f"{name}: {text}")
    if issubclass(cls, APIError):
        fields: dict[str, Any] = {
            "status": _get(data, "status", int),
            "vendor": _get(data, "vendor", str),
            "code": _opt(data, "code", str),
            "message": _opt(data, "message", str),
        }
        if issubclass(cls, RateLimitedError):
            retry_after = data.get("retry_after")
            if retry_after is not None and not isinstance(retry_after, int | float):
                raise CodecError("retry_after: expected a number or null")
            return cls(**fields, retry_after=retry_after)
        return cls(**fields)
    if issubclass(cls, ResponseError):
        return cls(
            _get(data, "message", str),
            vendor=_get(data, "vendor", str),
            path=_opt(data, "path", str),
        )
    return cls(text)


def encode_outcome(outcome: Outcome) -> dict[str, Any]:
    """``{"run": ...}`` or ``{"error": ...}``."""
    if isinstance(outcome, Run):
        return {"run": encode_run(outcome)}
    return {"error": encode_error(outcome)}


def decode_outcome(data: Any) -> Outcome:
    """The run or error :func:`encode_outcome` wrote."""
    if isinstance(data, Mapping) and isinstance(data.get("run"), Mapping):
        return decode_run(data["run"])
    if isinstance(data, Mapping) and isinstance(data.get("error"), Mapping):
        return decode_error(data["error"])
    raise CodecError('an observation is {"run": ...} or {"error": ...}')


def _maybe_outcome(data: Mapping[str, Any], name: str) -> Outcome | None:
    value = data.get(name)
    return None if value is None else decode_outcome(value)


# --- memory, records, events ---------------------------------------------------------------------


def encode_memory(memory: Memory) -> dict[str, Any]:
    """The tracker's memory; tuples become arrays, statuses their words."""
    return {
        "run": memory.run,
        "status": memory.status.value if memory.status is not None else None,
        "sig": memory.sig,
        "final": memory.final.value if memory.final is not None else None,
        "final_run": memory.final_run,
        "shown_error": memory.shown_error,
    }


def _maybe_status(data: Mapping[str, Any], name: str) -> Status | None:
    return None if data.get(name) is None else _enum(data, name, Status)


def decode_memory(data: Mapping[str, Any]) -> Memory:
    """The memory :func:`encode_memory` wrote, with its tuples and statuses back."""
    if not isinstance(data, Mapping):
        raise CodecError("memory: expected an object")
    shown = data.get("shown_error")
    if shown is not None and not (
        isinstance(shown, list) and len(shown) == 2 and all(isinstance(s, str) for s in shown)
    ):
        raise CodecError("shown_error: expected [class, message] or null")
    for name in ("run", "sig", "final_run"):
        if data.get(name) is not None and not isinstance(data[name], list):
            raise CodecError(f"{name}: expected an array or null")
    return Memory(
        run=_tuples(data.get("run")),
        status=_maybe_status(data, "status"),
        sig=_tuples(data.get("sig")),
        final=_maybe_status(data, "final"),
        final_run=_tuples(data.get("final_run")),
        shown_error=(shown[0], shown[1]) if shown is not None else None,
    )


def encode_record(record: Record) -> str:
    """A record as JSON text."""
    shown = "null" if record.shown is None else _outcome_text(record.shown)
    memory = dumps(encode_memory(record.memory))
    since = dumps(_iso(record.since))
    return (
        f'{{"format":{FORMAT},"memory":{memory},"version":{record.version},'
        f'"shown":{shown},"since":{since}}}'
    )


#: The JSON of the observations encoded last, by identity: a change's run is the record's
#: ``shown``, its event's ``current`` and the next event's ``previous``, encoded once.
_RECENT: dict[int, tuple[Outcome, str]] = {}
_RECENT_MAX: Final = 256


def _outcome_text(outcome: Outcome) -> str:
    found = _RECENT.get(id(outcome))
    if found is not None and found[0] is outcome:
        return found[1]
    text = dumps(encode_outcome(outcome))
    if len(_RECENT) >= _RECENT_MAX:
        _RECENT.clear()
    _RECENT[id(outcome)] = (outcome, text)
    return text


def _format(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise CodecError(f"{what}: expected an object")
    if data.get("format") != FORMAT:
        raise CodecError(f"{what}: format {data.get('format')!r}, this pipestatus reads {FORMAT}")
    return data


def decode_record(text: str | bytes) -> Record:
    """The record :func:`encode_record` wrote."""
    data = _format(loads(text), "record")
    return Record(
        memory=decode_memory(data.get("memory")),  # type: ignore[arg-type]
        version=_get(data, "version", int),
        shown=_maybe_outcome(data, "shown"),
        since=_time(data, "since"),
    )


def encode_event(event: Event) -> str:
    """An event as JSON text (what an outbox holds and a stream carries)."""
    previous = "null" if event.previous is None else _outcome_text(event.previous)
    head = dumps(
        {"format": FORMAT, "id": event.id, "key": event.key, "seq": event.seq,
         "kind": event.kind.value}
    )  # fmt: skip
    current = _outcome_text(event.current)
    return f'{head[:-1]},"previous":{previous},"current":{current},"at":{dumps(_iso(event.at))}}}'


def decode_event(text: str | bytes) -> Event:
    """The event :func:`encode_event` wrote."""
    data = _format(loads(text), "event")
    at = _time(data, "at")
    if at is None:
        raise CodecError("at: expected a time")
    return Event(
        id=_get(data, "id", str),
        key=_get(data, "key", str),
        seq=_get(data, "seq", int),
        kind=_enum(data, "kind", ChangeKind),
        previous=_maybe_outcome(data, "previous"),
        current=decode_outcome(data.get("current")),
        at=at,
    )
