"""Huawei credentials over real HTTP against the simulated server, which checks every AK/SK
signature exactly (recomputed from the request as it arrived) and issues IAM tokens and
temporary keys on a clock the tests move (``server.huawei``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest

from pipestatus import Client, Run
from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.auth._sign import parse_authorization
from pipestatus.errors import AuthError, PipestatusError, ServerError
from pipestatus.testing import RecordedRequest, SimJob, SimRun, SimStage, VendorServer
from pipestatus.vendors import REGISTRY

TOKEN = "sim-SECRET-3c1f9a7b"  # the server's token: the demo SK and the demo IAM password
AK = "TESTACCESSKEY0000001"
SK = "test-secret-key-9d8e7f6a5b4c3d2e1f"
REPO, PIPE = 2111976239, 6
PROJECT = "proj ü+x(1)"  # needs percent-encoding in the path
V5_IDS = ["d1971e7b3fb44f4a8e79d4b4f1b2c3d4", "pipe/with space?&=#%", "二号流水线"]
USER, DOMAIN = "ci-reader", "acme"
PASSWORD = "pw-SECRET-8e2d4c6a"
IAM_PATH = "/v3/auth/tokens"


async def _no_sleep(_: float) -> None:
    return None


def _run(status: str = "success", number: int = 7) -> SimRun:
    return SimRun(number, status, [SimStage("build", [SimJob("make", status)])])


@pytest.fixture
async def server() -> AsyncIterator[VendorServer]:
    async with VendorServer(token=TOKEN) as srv:
        srv.add_repo_pipeline(REPO, PIPE, _run(), extra_jobs=230)  # 231 jobs: three pages
        for pipeline_id in V5_IDS:
            srv.add_v5_pipeline(PROJECT, pipeline_id, _run("failed"))
        srv.huawei.add_key(AK, SK)
        srv.huawei.add_user(USER, PASSWORD, DOMAIN)
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(timeout=5.0, retries=2, sleep=_no_sleep) as c:
        yield c


def _aksk(server: VendorServer, sk: str = SK, project_id: str | None = None) -> HuaweiAKSK:
    return HuaweiAKSK(AK, sk, clock=server.huawei.now, project_id=project_id)


def _iam(server: VendorServer, password: str = PASSWORD) -> HuaweiIAM:
    return HuaweiIAM(
        USER, password, DOMAIN, "cn-north-4", iam_url=server.url, clock=server.huawei.now
    )


def _signed(server: VendorServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.headers.get("authorization", "").startswith("SDK-")]


def _token_requests(server: VendorServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path == IAM_PATH]


def _ak(request: RecordedRequest) -> str:
    parts = parse_authorization(request.headers["authorization"])
    assert parts is not None
    return parts.ak


def _names(request: RecordedRequest) -> tuple[str, ...]:
    parts = parse_authorization(request.headers["authorization"])
    assert parts is not None
    return parts.names


# --- AK/SK: every request signed, and accepted --------------------------------------------------


async def test_signed_v4_latest_jobs_is_accepted(server: VendorServer, client: Client) -> None:
    """A v4 latest-jobs request signed with AK/SK is accepted; it carries X-Sdk-Date and signs
    host and the date."""
    repo = client.codearts_repo(server.url, credentials=_aksk(server))
    run = await repo.latest_run(REPO, PIPE)
    assert isinstance(run, Run)
    (seen,) = _signed(server)
    assert {"host", "x-sdk-date"} <= set(_names(seen))
    assert server.huawei.refused == 0


async def test_every_page_of_v4_jobs_is_signed_with_its_query(
    server: VendorServer, client: Client
) -> None:
    """Each page of the v4 job list (offset and limit in the query) is signed and accepted:
    the query goes out in canonical order, the order that was signed."""
    repo = client.codearts_repo(server.url, credentials=_aksk(server))
    jobs = await repo.jobs(REPO, PIPE)
    assert len(jobs) == 231
    pages = _signed(server)
    assert [r.query for r in pages] == [
        {"limit": "100", "offset": str(offset)} for offset in (0, 100, 200)
    ]
    assert server.huawei.refused == 0


@pytest.mark.parametrize("project", [PROJECT, "a/b %2F?#"], ids=["unicode", "slash"])
async def test_v5_batches_with_ids_that_need_encoding_are_accepted(
    server: VendorServer, project: str
) -> None:
    """v5 batch calls (a POST body, hashed into the signature) to a project whose ID needs
    percent-encoding (even an encoded '/') are accepted; X-Project-Id is the adapter's
    project, and is signed."""
    for pipeline_id in V5_IDS:
        server.add_v5_pipeline(project, pipeline_id, _run("failed"))
    async with Client(retries=0) as client:
        pipe = client.codearts_pipeline(
            server.url, project_id=project, credentials=_aksk(server), batch_size=2
        )
        runs = await pipe.latest_runs(V5_IDS)
    assert sorted(runs) == sorted(V5_IDS)
    batches = _signed(server)
    assert len(batches) == 2
    for seen in batches:
        assert seen.headers["x-project-id"] == project
        assert "x-project-id" in _names(seen)
        assert "content-type" in _names(seen)
    assert server.huawei.refused == 0


async def test_credentials_project_id_wins_over_the_adapters(
    server: VendorServer, client: Client
) -> None:
    """AK/SK credentials with a project ID of their own send it, on v4 and v5 alike."""
    aksk = _aksk(server, project_id="own-project")
    await client.codearts_repo(server.url, credentials=aksk).latest_run(REPO, PIPE)
    pipe = client.codearts_pipeline(server.url, project_id=PROJECT, credentials=aksk)
    await pipe.latest_runs(V5_IDS[:1])
    assert [r.headers.get("x-project-id") for r in _signed(server)] == ["own-project"] * 2


async def test_conditional_requests_sign_if_none_match(
    server: VendorServer, client: Client
) -> None:
    """The second read sends If-None-Match, signed, and the server's 304 reuses the run."""
    repo = client.codearts_repo(server.url, credentials=_aksk(server))
    first = await repo.latest_run(REPO, PIPE)
    second = await repo.latest_run(REPO, PIPE)
    assert second is first  # only a 304 hands back the cached run itself
    plain, conditional = _signed(server)
    assert "if-none-match" not in _names(plain)
    assert "if-none-match" in _names(conditional)
    assert conditional.headers["if-none-match"]
    assert server.huawei.refused == 0


def _ticking(server: VendorServer) -> Iterator[datetime]:
    for step in itertools.count():
        yield server.huawei.now() + timedelta(seconds=step)


async def test_retries_are_signed_afresh(server: VendorServer, client: Client) -> None:
    """A retried request (after a 503) gets a new X-Sdk-Date and a new signature, and is
    accepted."""
    ticks = _ticking(server)
    aksk = HuaweiAKSK(AK, SK, clock=lambda: next(ticks))
    server.fault(status=503, times=2)
    run = await client.codearts_repo(server.url, credentials=aksk).latest_run(REPO, PIPE)
    assert isinstance(run, Run)
    attempts = _signed(server)
    assert len(attempts) == 3
    assert len({r.headers["x-sdk-date"] for r in attempts}) == 3
    assert len({r.headers["authorization"] for r in attempts}) == 3
    assert server.huawei.refused == 0


async def test_a_wrong_sk_is_refused_and_says_to_check_the_keys(
    server: VendorServer, client: Client
) -> None:
    """A signature made with the wrong SK is refused with the gateway's APIGW.0301, reported as
    an AuthError telling to check the AK and SK (and never retried)."""
    repo = client.codearts_repo(server.url, credentials=_aksk(server, sk="not-the-secret"))
    with pytest.raises(AuthError) as caught:
        await repo.latest_run(REPO, PIPE)
    assert caught.value.code == "APIGW.0301"
    assert "check the AK and SK" in str(caught.value)
    assert len(_signed(server)) == 1
    assert server.huawei.refused == 1


@pytest.mark.parametrize("skew", [-20 * 60, 16 * 60])
async def test_a_stale_date_is_refused_and_says_to_check_the_clock(
    server: VendorServer, client: Client, skew: int
) -> None:
    """A signature dated over 15 minutes from the server's clock (behind or ahead) is refused,
    reported as an AuthError telling to check this machine's clock."""
    aksk = HuaweiAKSK(AK, SK, clock=lambda: server.huawei.now() + timedelta(seconds=skew))
    repo = client.codearts_repo(server.url, credentials=aksk)
    with pytest.raises(AuthError) as caught:
        await repo.latest_run(REPO, PIPE)
    assert caught.value.code == "APIGW.0301"
    assert "check this machine's clock" in str(caught.value)


async def test_a_date_within_fifteen_minutes_is_accepted(
    server: VendorServer, client: Client
) -> None:
    """A clock 14 minutes off is still within the gateway's window."""
    aksk = HuaweiAKSK(AK, SK, clock=lambda: server.huawei.now() - timedelta(minutes=14))
    assert await client.codearts_repo(server.url, credentials=aksk).latest_run(REPO, PIPE)


async def test_keys_from_the_sdk_environment(
    server: VendorServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HuaweiAKSK.from_env reads the SDK's variables; with a region and the SDK's endpoint
    override for it, the adapter reaches this server."""
    for name, value in server.huawei_env("cn-north-4").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "env-project")
    repo = client.codearts_repo(region="cn-north-4", credentials=HuaweiAKSK.from_env())
    assert repo.base_url == server.url
    assert isinstance(await repo.latest_run(REPO, PIPE), Run)
    (seen,) = _signed(server)
    assert seen.headers["x-project-id"] == "env-project"


def _region_env(server: VendorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point cn-north-4's endpoints and IAM at the server (the SDK's overrides)."""
    for name, value in server.huawei_env("cn-north-4").items():
        if name.startswith(("HUAWEICLOUD_SDK_REGION_", "HUAWEICLOUD_SDK_IAM_ENDPOINT")):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUAWEICLOUD_SDK_PROJECT_ID", raising=False)


async def test_a_regions_project_is_found_once_as_the_sdk_does(
    server: VendorServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AK/SK credentials without a project, on an adapter made with region=, ask IAM for the
    region's project once (a signed GET /v3/projects?name=...), however many requests and
    adapters need it, and send it as X-Project-Id."""
    _region_env(server, monkeypatch)
    aksk = _aksk(server)
    first = client.codearts_repo(region="cn-north-4", credentials=aksk)
    second = client.codearts_repo(region="cn-north-4", credentials=aksk)
    await asyncio.gather(*(a.latest_run(REPO, PIPE) for a in (first, second) for _ in range(5)))
    lookups = [r for r in server.requests if r.path == "/v3/projects"]
    assert len(lookups) == 1
    assert lookups[0].query == {"name": "cn-north-4"}
    assert lookups[0].headers["authorization"].startswith("SDK-HMAC-SHA256 ")
    used = {r.headers.get("x-project-id") for r in _signed(server) if r.path != "/v3/projects"}
    assert len(used) == 1
    assert None not in used
    assert server.huawei.refused == 0


async def test_a_region_without_its_project_says_how_to_give_it(
    server: VendorServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When IAM lists no project of the region's name, the request fails with an error that
    says to give the project ID."""
    _region_env(server, monkeypatch)
    server.huawei.missing_projects.add("cn-north-4")
    repo = client.codearts_repo(region="cn-north-4", credentials=_aksk(server))
    with pytest.raises(PipestatusError, match="HUAWEICLOUD_SDK_PROJECT_ID"):
        await repo.latest_run(REPO, PIPE)


async def test_no_region_no_project_no_lookup(server: VendorServer, client: Client) -> None:
    """With a base URL and no project ID, a v4 request is signed without X-Project-Id and
    nothing is asked of IAM."""
    await client.codearts_repo(server.url, credentials=_aksk(server)).latest_run(REPO, PIPE)
    (seen,) = server.requests
    assert "x-project-id" not in seen.headers


# --- temporary keys ---------------------------------------------------------------------------


async def test_temporary_keys_are_minted_signed_and_renewed(
    server: VendorServer, client: Client
) -> None:
    """Temporary AK/SK minted from an IAM token sign requests with a signed X-Security-Token
    and the token's project as X-Project-Id; they are minted again once less than the
    threshold (at most half their lifetime) is left."""
    server.huawei.keys_lifetime = 4.0
    repo = client.codearts_repo(server.url, credentials=_iam(server).temporary_aksk(900))
    await repo.latest_run(REPO, PIPE)
    server.huawei.advance(1.0)  # 3 s left of 4: more than half, kept
    await repo.latest_run(REPO, PIPE)
    server.huawei.advance(1.5)  # 1.5 s left: renewed
    await repo.latest_run(REPO, PIPE)
    mints = [r for r in server.requests if r.path == "/v3.0/OS-CREDENTIAL/securitytokens"]
    assert len(mints) == 2
    assert len(_token_requests(server)) == 1
    signed = _signed(server)
    assert len(signed) == 3
    assert len({_ak(r) for r in signed}) == 2
    for seen in signed:
        assert "x-security-token" in _names(seen)
        assert seen.headers["x-project-id"]
    assert server.huawei.refused == 0


async def test_temporary_keys_on_v5_send_the_adapters_project(
    server: VendorServer, client: Client
) -> None:
    """On v5, temporary keys send the adapter's project as X-Project-Id."""
    pipe = client.codearts_pipeline(
        server.url, project_id=PROJECT, credentials=_iam(server).temporary_aksk()
    )
    assert await pipe.latest_runs(V5_IDS[:1])
    (seen,) = _signed(server)
    assert seen.headers["x-project-id"] == PROJECT


# --- IAM tokens -------------------------------------------------------------------------------


async def test_an_iam_token_is_fetched_once_and_sent(server: VendorServer, client: Client) -> None:
    """The password token is asked of IAM once (POST /v3/auth/tokens?nocatalog=true, scoped to
    the project) and sent in X-Auth-Token on every request."""
    iam = _iam(server)
    repo = client.codearts_repo(server.url, credentials=iam)
    pipe = client.codearts_pipeline(server.url, project_id=PROJECT, credentials=iam)
    await repo.latest_run(REPO, PIPE)
    await pipe.latest_runs(V5_IDS)
    (asked,) = _token_requests(server)
    assert asked.query == {"nocatalog": "true"}
    header = REGISTRY["codearts_repo"].header.lower()
    tokens = {r.headers[header] for r in server.requests if r.path != IAM_PATH}
    assert len(tokens) == 1
    assert tokens != {TOKEN}


async def test_expired_token_and_a_thousand_polls_cost_one_token_request(
    server: VendorServer,
) -> None:
    """1,000 concurrent polls that find the token expired cause exactly one token request,
    and every poll succeeds (the fetch never waits for a slot its waiters hold)."""
    for n in range(1, 1001):
        server.add_repo_pipeline(9000, n, _run())
    async with Client(max_concurrency=16, retries=0) as client:
        repo = client.codearts_repo(server.url, credentials=_iam(server))
        await repo.latest_run(9000, 1)
        server.huawei.advance(server.huawei.token_lifetime + 1)
        server.reset_stats()
        async with asyncio.timeout(30):
            results = await client.poll(repo.target(9000, n) for n in range(1, 1001))
    assert len(_token_requests(server)) == 1
    assert all(isinstance(result, Run) for result in results.values())
    assert len(results) == 1000
    assert server.huawei.refused == 0


async def test_two_second_tokens_survive_a_watch_of_many_lifetimes(server: VendorServer) -> None:
    """With tokens that live two seconds, a watch across ten lifetimes of the server's clock
    sees every observation succeed: each token is renewed before it expires, and none is
    refused."""
    server.huawei.token_lifetime = 2.0
    server.add_v5_pipeline(PROJECT, "ticking", [_run("running", n) for n in range(1, 200)])
    changes = 0
    async with Client(retries=0) as client:
        pipe = client.codearts_pipeline(server.url, project_id=PROJECT, credentials=_iam(server))
        watch = client.watch([pipe.target("ticking")], interval=0.01, errors=True)
        async with asyncio.timeout(30):
            async for change in watch:
                assert isinstance(change.current, Run), change.current
                changes += 1
                server.huawei.advance(0.5)
                if changes == 40:  # 20 s of the server's clock: ten lifetimes
                    break
        await watch.aclose()
    assert server.huawei.refused == 0
    assert 10 <= len(_token_requests(server)) <= 21


async def test_a_revoked_token_is_renewed_once_after_a_401(
    server: VendorServer, client: Client
) -> None:
    """A token the server no longer knows is answered 401; the client renews it once and the
    request succeeds."""
    repo = client.codearts_repo(server.url, credentials=_iam(server))
    await repo.latest_run(REPO, PIPE)
    server.huawei.tokens.clear()
    assert isinstance(await repo.latest_run(REPO, PIPE), Run)
    assert len(_token_requests(server)) == 2
    assert server.huawei.refused == 1


async def test_the_token_request_goes_through_the_transport(
    server: VendorServer, client: Client
) -> None:
    """The IAM call is retried like any request (a 503 from IAM, then the token)."""
    server.fault(path_prefix=IAM_PATH, status=503, times=1)
    repo = client.codearts_repo(server.url, credentials=_iam(server))
    assert isinstance(await repo.latest_run(REPO, PIPE), Run)
    assert len(_token_requests(server)) == 2


async def test_iam_that_keeps_failing_fails_the_poll_with_its_error(server: VendorServer) -> None:
    """When IAM answers 5xx past the retries, the request fails with that ServerError, named
    as IAM's."""
    server.fault(path_prefix=IAM_PATH, status=503)
    async with Client(retries=1, sleep=_no_sleep) as client:
        repo = client.codearts_repo(server.url, credentials=_iam(server))
        with pytest.raises(ServerError) as caught:
            await repo.latest_run(REPO, PIPE)
    assert caught.value.vendor == "huawei_iam"


async def test_a_refused_password_names_the_user_and_domain(
    server: VendorServer, client: Client
) -> None:
    """A wrong password is an AuthError naming the user and the domain, never the password;
    many requests waiting for the token share one refusal."""
    repo = client.codearts_repo(server.url, credentials=_iam(server, password="wrong-PASSWORD"))
    results = await client.poll([repo.target(REPO, PIPE), repo.target(REPO, PIPE + 1)])
    errors = list(results.values())
    assert all(isinstance(error, AuthError) for error in errors)
    text = str(errors[0])
    assert USER in text
    assert DOMAIN in text
    assert "wrong-PASSWORD" not in text
    assert len(_token_requests(server)) == 1


async def test_an_agency_token_is_asked_with_the_users_token(
    server: VendorServer, client: Client
) -> None:
    """An agency (assume-role) token is asked of IAM with the user's token in the header, then
    used for the service's requests."""
    server.huawei.add_agency("other-account", "ci-agency")
    agency = _iam(server).assume("ci-agency", domain="other-account")
    repo = client.codearts_repo(server.url, credentials=agency)
    assert isinstance(await repo.latest_run(REPO, PIPE), Run)
    password, assume = _token_requests(server)
    header = REGISTRY["codearts_repo"].header.lower()
    assert header not in password.headers
    assert assume.headers[header]
    (used,) = [r for r in server.requests if r.path != IAM_PATH]
    assert used.headers[header] != assume.headers[header]


def test_iam_credentials_work_under_a_second_event_loop() -> None:
    """One HuaweiIAM serves requests under one asyncio.run and then another (its single-flight
    fetch is not bound to the first loop); the second server, not knowing the first token,
    answers 401 and the token is renewed."""
    port = 0
    iam: HuaweiIAM | None = None
    seen: list[int] = []

    async def once() -> None:
        nonlocal port, iam
        async with VendorServer(token=TOKEN, port=port) as server:
            port = server.port
            server.add_repo_pipeline(REPO, PIPE, _run())
            server.huawei.add_user(USER, PASSWORD, DOMAIN)
            if iam is None:
                iam = _iam(server)
            async with Client(retries=0) as client:
                repo = client.codearts_repo(server.url, credentials=iam)
                results = await asyncio.gather(*(repo.latest_run(REPO, PIPE) for _ in range(5)))
            assert all(isinstance(run, Run) for run in results)
            seen.append(len(_token_requests(server)))

    asyncio.run(once())
    asyncio.run(once())
    assert seen == [1, 1]
