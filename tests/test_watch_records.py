"""What a watch stores, without a store: the JSON codec (runs, errors, memory, records,
events, target keys), compare and set, catching up on a history, and rendezvous hashing.
Pure: no event loop, no network (the runs come from the simulated fleet through the real
API once, in one test)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pipestatus import Client, Job, Run, Stage, Status, Target
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
from pipestatus.model import ChangeKind as K
from pipestatus.store._cas import Verdict, plan
from pipestatus.testing import VendorServer, make_fleet
from pipestatus.vendors import REGISTRY
from pipestatus.watch.codec import (
    CodecError,
    decode_event,
    decode_outcome,
    decode_record,
    encode_event,
    encode_outcome,
    encode_record,
)
from pipestatus.watch.keys import RemoteSource, account_key, target_key, target_of
from pipestatus.watch.records import Event, Record, Write, event_id
from pipestatus.watch.replicas import owned, owner
from pipestatus.watch.tracker import Memory, catch_up, observe, run_key

NOW = datetime(2025, 5, 17, 3, 2, 25, tzinfo=UTC)


def run(number: int, status: Status, *, started: datetime | None = None) -> Run:
    job = Job(id=f"j{number}", name="make", status=status, raw_status=status.value.upper())
    stage = Stage(id="s", name="build", order=0, status=status, raw_status=None, jobs=(job,))
    return Run(
        vendor="toy",
        pipeline_id="p",
        run_id=f"r{number}",
        number=number,
        status=status,
        raw_status=status.value.upper(),
        started_at=started or NOW + timedelta(hours=number),
        stages=(stage,),
    )


# --- the codec -------------------------------------------------------------------------------


async def test_every_vendors_runs_come_back_equal_from_json() -> None:
    """A run of each vendor (read from the simulated fleet) is equal to itself after a trip
    through the JSON the stores keep."""
    async with VendorServer(token="t") as server, Client() as client:
        make_fleet(server, 3)
        targets = []
        for key, spec in REGISTRY.items():
            source = getattr(client, key)(server.url, token="t", **spec.demo.options)
            targets += [source.target(*spec.demo.ids(n)) for n in (1, 2, 3)]
        outcomes = await client.poll(targets)
    runs = [outcome for outcome in outcomes.values() if isinstance(outcome, Run)]
    assert {r.vendor for r in runs} == set(REGISTRY)
    for original in runs:
        text = json.dumps(encode_outcome(original))
        assert decode_outcome(json.loads(text)) == original


@pytest.mark.parametrize(
    "error",
    [
        PipestatusError("plain"),
        TransportError("connection refused"),
        RequestTimeout("timed out"),
        APIError(status=418, vendor="toy", code="TEA", message="a teapot"),
        AuthError(status=401, vendor="toy", code=None, message=None),
        ForbiddenError(status=403, vendor="toy", code="DEV.403", message="no"),
        NotFoundError(status=404, vendor="toy", message="gone"),
        RateLimitedError(vendor="toy", retry_after=2.5),
        ServerError(status=503, vendor="toy"),
        ResponseError("bad JSON", vendor="toy", path="$.stages[0]"),
        WaitTimeout("gave up"),
        StoreError("store"),
        StoreUnavailableError("away"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_come_back_as_their_own_class_with_their_fields(error: PipestatusError) -> None:
    """An error is stored as its class, message and fields, and comes back the same."""
    back = decode_outcome(json.loads(json.dumps(encode_outcome(error))))
    assert type(back) is type(error)
    assert str(back) == str(error)
    for name in ("status", "vendor", "code", "message", "retry_after", "path"):
        assert getattr(back, name, None) == getattr(error, name, None)


def test_an_error_of_a_class_not_ours_comes_back_as_the_root_with_its_name() -> None:
    """A subclass defined elsewhere comes back as ``PipestatusError``, naming the class."""

    class Odd(PipestatusError):
        pass

    back = decode_outcome(encode_outcome(Odd("strange")))
    assert type(back) is PipestatusError
    assert str(back) == "Odd: strange"


def test_a_remembered_memory_decides_as_the_live_one() -> None:
    """The memory read back from JSON decides the next observation exactly as the memory it
    was written from (tuples, statuses and all)."""
    live = Memory()
    for outcome in (run(1, Status.RUNNING), run(1, Status.SUCCESS), run(2, Status.RUNNING)):
        live = observe(live, outcome, errors=True).memory
    live = observe(live, NotFoundError(status=404, vendor="toy"), errors=True).memory
    record = Record(memory=live, version=4, shown=run(2, Status.RUNNING), since=NOW)
    back = decode_record(encode_record(record))
    assert back == record
    assert back.memory.status is Status.RUNNING
    for following in (run(2, Status.RUNNING), run(2, Status.FAILED), run(3, Status.SUCCESS)):
        assert observe(back.memory, following, errors=True) == observe(live, following, errors=True)


def test_events_come_back_equal() -> None:
    """An event (previous and current observations included) survives its JSON."""
    event = Event(
        id="abc",
        key='["toy","https://x",{},["p"]]',
        seq=3,
        kind=K.BROKE,
        previous=run(1, Status.SUCCESS),
        current=run(2, Status.FAILED),
        at=NOW,
    )
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ("[]", "expected an object"),
        ('{"format": 9}', "format 9"),
        ('{"format": 1, "memory": {}, "version": "x"}', "version: expected int"),
        ('{"format": 1, "memory": {"status": "melted"}, "version": 1}', "unknown word"),
        ('{"format": 1, "memory": {"sig": 5}, "version": 1}', "sig: expected an array"),
        (
            '{"format": 1, "memory": {}, "version": 1, "since": "2025-01-01T00:00:00"}',
            "without its offset",
        ),
    ],
)
def test_records_that_are_not_ours_are_refused(text: str, problem: str) -> None:
    """Decoding refuses what the codec did not write, saying what is wrong."""
    with pytest.raises(CodecError, match=problem):
        decode_record(text)


async def test_a_targets_key_is_stable_names_its_account_and_holds_no_token() -> None:
    """Equal targets from two clients have one key; another scope, host or ID another; the
    key never holds the token; a key rebuilds a target that describes the pipeline."""
    spec = REGISTRY["yunxiao"]
    keys = []
    for _ in range(2):
        async with Client() as client:
            flow = client.yunxiao("https://flow.example", token="s3cret-token", organization_id="o")
            keys.append(target_key(flow.target("42")))
            other_org = client.yunxiao("https://flow.example", token="t", organization_id="p")
            other_host = client.yunxiao("https://other.example", token="t", organization_id="o")
            others = [
                target_key(other_org.target("42")),
                target_key(other_host.target("42")),
                target_key(flow.target("43")),
            ]
            assert account_key(flow.target("42")) == account_key(flow.target("43"))
    assert keys[0] == keys[1]
    assert len({keys[0], *others}) == 4
    assert "s3cret" not in keys[0]
    rebuilt = target_of(keys[0])
    assert isinstance(rebuilt.source, RemoteSource)
    assert (rebuilt.vendor, rebuilt.ids) == (spec.key, ("42",))
    assert rebuilt.source.origin == flow.origin
    assert target_key(rebuilt) == keys[0]
    assert repr(rebuilt) == repr(flow.target("42"))


def test_a_change_id_is_the_same_for_the_same_change_only() -> None:
    """The same change from the same record has one ID; another version, kind or run another."""
    sig = observe(Memory(), run(1, Status.FAILED), errors=False).memory.sig
    assert sig is not None
    one = event_id("k", 3, K.BROKE, sig)
    assert one == event_id("k", 3, K.BROKE, sig)
    other_sig = observe(Memory(), run(2, Status.FAILED), errors=False).memory.sig
    assert other_sig is not None
    assert len({one, event_id("k", 4, K.BROKE, sig), event_id("k", 3, K.FINISHED, sig)}) == 3
    assert one != event_id("k", 3, K.BROKE, other_sig)
    assert one != event_id("j", 3, K.BROKE, sig)


# --- compare and set -------------------------------------------------------------------------


def _write(key: str, version: int, event: str) -> Write:
    change = Event(id=event, key=key, seq=version + 1, kind=K.FIRST, previous=None,
                   current=run(1, Status.RUNNING), at=NOW)  # fmt: skip
    return Write(key=key, version=version, record=Record(memory=Memory(), version=version + 1),
                 event=change)  # fmt: skip


def test_compare_and_set_applies_refuses_and_recognises_a_retry() -> None:
    """A write applies on its version (or on nothing stored), is refused on another (and so
    are the writes after it on that key), and a write already stored counts as done."""
    writes = [
        _write("new", 0, "n1"),
        _write("new", 1, "n2"),  # chained on the one before, in the same batch
        _write("ahead", 2, "a3"),  # the store is at 5: another writer got there first
        _write("ahead", 3, "a4"),
        _write("retried", 6, "r7"),  # stored already: (7, "r7")
        _write("lost", 9, "l10"),  # nothing stored (a Redis restarted empty): applied
    ]
    heads = {"ahead": (5, "x"), "retried": (7, "r7")}
    assert plan(writes, heads) == [
        Verdict.APPLY,
        Verdict.APPLY,
        Verdict.CONFLICT,
        Verdict.CONFLICT,
        Verdict.ALREADY,
        Verdict.APPLY,
    ]


# --- catching up on a history ------------------------------------------------------------------


def test_a_failure_hidden_by_a_newer_run_is_broke_then_the_next_success_fixed() -> None:
    """The finishes a history shows come out oldest first, named by the table: a failure
    after the remembered success is BROKE, a success after it FIXED."""
    memory = observe(Memory(), run(1, Status.SUCCESS), errors=False).memory
    history = [run(1, Status.SUCCESS), run(2, Status.FAILED), run(3, Status.SUCCESS)]
    steps = catch_up(memory, history, latest=run_key(run(4, Status.RUNNING)))
    assert [(step.kind, r.number) for step, r in steps] == [(K.BROKE, 2), (K.FIXED, 3)]
    after = steps[-1][0].memory
    assert observe(after, run(4, Status.RUNNING), errors=False).kind is K.STARTED


def test_catching_up_skips_what_was_announced_what_runs_and_the_latest() -> None:
    """A finish announced already, a run not finished, and the run seen now are no step."""
    memory = observe(Memory(), run(1, Status.FAILED), errors=False).memory
    history = [run(1, Status.FAILED), run(2, Status.RUNNING), run(3, Status.FAILED)]
    assert catch_up(memory, history, latest=run_key(run(3, Status.FAILED))) == []
    steps = catch_up(memory, history, latest=run_key(run(4, Status.PENDING)))
    assert [(step.kind, r.number) for step, r in steps] == [(K.STILL_FAILING, 3)]


def test_the_remembered_run_finishing_while_down_is_caught_up() -> None:
    """The run remembered as running, finished in the history, is announced with its kind."""
    memory = observe(Memory(), run(1, Status.SUCCESS), errors=False).memory
    memory = observe(memory, run(2, Status.RUNNING), errors=False).memory
    steps = catch_up(memory, [run(2, Status.TIMEDOUT)], latest=run_key(run(3, Status.RUNNING)))
    assert [(step.kind, r.number) for step, r in steps] == [(K.BROKE, 2)]


# --- rendezvous hashing --------------------------------------------------------------------------


def test_every_member_computes_the_same_owner_and_shares_are_even() -> None:
    """Owners depend on the member set only (not its order); 3 members get a third each,
    give or take."""
    groups = {f"t{i}": f"group-{i}" for i in range(3000)}
    members = ["a", "b", "c"]
    shares = [owned(groups, members, me) for me in members]
    assert set().union(*shares) == set(groups)
    assert sum(len(share) for share in shares) == len(groups)
    assert all(800 < len(share) < 1200 for share in shares)
    assert owner("group-7", ["c", "a", "b"]) == owner("group-7", members)


def test_when_a_member_leaves_only_its_own_targets_move() -> None:
    """Removing a member moves its targets to the others and nothing else."""
    groups = {f"t{i}": f"group-{i}" for i in range(1000)}
    before = {me: owned(groups, ["a", "b", "c"], me) for me in "abc"}
    after = {me: owned(groups, ["a", "b"], me) for me in "ab"}
    for me in "ab":
        assert before[me] <= after[me]
    assert after["a"] | after["b"] == set(groups)
    assert (after["a"] - before["a"]) | (after["b"] - before["b"]) == before["c"]


async def test_v5_targets_of_one_project_share_a_group() -> None:
    """The targets of a batching account have one group: one owner, one batch."""
    spec = next(spec for spec in REGISTRY.values() if spec.adapter.batches)
    async with Client() as client:
        source = getattr(client, spec.key)("https://x.example", token="t", **spec.demo.options)
        targets: list[Target] = [source.target(*spec.demo.ids(n)) for n in range(1, 50)]
    groups = {target: account_key(target) for target in targets}
    assert len(set(groups.values())) == 1
    for me in "abc":
        assert owned(groups, "abc", me) in (set(), set(targets))


def test_no_stub_is_reached() -> None:
    """The ``Watcher``'s parts (:mod:`~pipestatus.watch.scoping`, :mod:`~pipestatus.watch.ending`,
    :mod:`~pipestatus.watch.remembering`) name what they use of each other as stubs that raise
    ``NotImplementedError``; the order of the bases must let every real method win. Every
    method the ``Watcher`` resolves is one with a body."""
    import ast
    import inspect
    import textwrap

    from pipestatus.watch import Watcher

    stubs = []
    for name in dir(Watcher):
        method = inspect.getattr_static(Watcher, name)
        if not inspect.isfunction(method):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(method))
        except (OSError, TypeError):
            continue
        (function,) = ast.parse(source).body
        assert isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        body = [node for node in function.body if not isinstance(node, ast.Expr)]
        if len(body) == 1 and isinstance(body[0], ast.Raise):
            stubs.append(f"{method.__qualname__}")
    assert stubs == []
