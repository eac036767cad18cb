"""Huawei credentials over real HTTP against the simulated server, which checks every AK/SK
signature exactly (recomputed from the request as it arrived) and issues IAM tokens and
temporary keys on a clock the tests move (``server.huawei``)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import quote

import aiohttp
import pytest
import yarl

from pipestatus import Client, Run
from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.auth._sign import parse_authorization, sign
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


# --- arguments --------------------------------------------------------------------------------


def test_exactly_one_credential_and_one_place() -> None:
    """The Huawei factories take exactly one of token/credentials and of base_url/region."""
    client = Client()
    aksk = HuaweiAKSK(AK, SK)
    with pytest.raises(ValueError, match="exactly one of token and credentials"):
        client.codearts_repo("https://h", token="t", credentials=aksk)
    with pytest.raises(ValueError, match="exactly one of token and credentials"):
        client.codearts_repo("https://h")
    with pytest.raises(ValueError, match="exactly one of base_url and region"):
        client.codearts_pipeline("https://h", region="cn-north-4", project_id="p", token="t")
    with pytest.raises(TypeError, match="credentials must be"):
        client.codearts_repo("https://h", credentials="t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="HuaweiAKSK goes in credentials="):
        client.codearts_repo("https://h", token=aksk)  # type: ignore[arg-type]


def test_an_unknown_region_names_the_known_ones() -> None:
    """An unknown region is a ValueError listing the regions the SDK's table knows."""
    with pytest.raises(ValueError, match="unknown region 'mars-1'") as caught:
        Client().codearts_repo(region="mars-1", token="t")
    assert "cn-north-4" in str(caught.value)
    assert "af-north-1" in str(caught.value)


@pytest.mark.parametrize(
    ("vendor", "region", "url"),
    [
        ("codearts_repo", "cn-north-4", "https://codehub-ext.cn-north-4.myhuaweicloud.com"),
        ("codearts_repo", "tr-west-1", "https://codeartsrepo-ext.tr-west-1.myhuaweicloud.com"),
        ("codearts_repo", "me-east-1", "https://repo.me-east-1.myhuaweicloud.com"),
        ("codearts_pipeline", "cn-east-3", "https://cloudpipeline-ext.cn-east-3.myhuaweicloud.com"),
        (
            "codearts_pipeline",
            "la-south-2",
            "https://pipeline-external.la-south-2.myhuaweicloud.com",
        ),
        ("codearts_pipeline", "af-south-1", "https://pipeline.af-south-1.myhuaweicloud.com"),
    ],
)
def test_regions_pick_the_sdks_endpoints(vendor: str, region: str, url: str) -> None:
    """A region picks the endpoint of the SDK's region table."""
    regions = REGISTRY[vendor].regions
    assert regions is not None
    assert regions.endpoint(region, environ={}) == url


def test_v5_has_no_eu_west_101() -> None:
    """A region the SDK lists for one service only is unknown to the other."""
    repo, pipe = REGISTRY["codearts_repo"].regions, REGISTRY["codearts_pipeline"].regions
    assert repo is not None
    assert pipe is not None
    assert repo.endpoint("eu-west-101", environ={})
    with pytest.raises(ValueError, match="unknown region"):
        pipe.endpoint("eu-west-101", environ={})


def test_the_sdks_override_wins_for_its_region_only() -> None:
    """HUAWEICLOUD_SDK_REGION_{SERVICE}_{REGION} overrides that region's endpoint (the first
    of a list), even for a region the table lacks."""
    regions = REGISTRY["codearts_pipeline"].regions
    assert regions is not None
    environ = {
        "HUAWEICLOUD_SDK_REGION_CODEARTSPIPELINE_CN_NORTH_4": "https://a.example, https://b",
        "HUAWEICLOUD_SDK_REGION_CODEARTSPIPELINE_MY_LAB_1": "http://127.0.0.1:9",
    }
    assert regions.endpoint("cn-north-4", environ=environ) == "https://a.example"
    assert regions.endpoint("my-lab-1", environ=environ) == "http://127.0.0.1:9"
    assert regions.endpoint("cn-east-3", environ=environ).endswith("cn-east-3.myhuaweicloud.com")


@pytest.mark.parametrize(
    ("explicit", "region", "project", "environ", "url"),
    [
        ("https://iam.example", "cn-north-4", "x", {}, "https://iam.example"),
        (None, "cn-north-4", "x", {}, "https://iam.cn-north-4.myhuaweicloud.com"),
        (None, None, "ap-southeast-3_team", {}, "https://iam.ap-southeast-3.myhuaweicloud.com"),
        (None, "eu-west-101", "x", {}, "https://iam.myhuaweicloud.com"),
        (None, "cn-north-4", "x", {"HUAWEICLOUD_SDK_IAM_ENDPOINT": "https://o"}, "https://o"),
    ],
)
def test_the_iam_endpoint(
    explicit: str | None, region: str | None, project: str, environ: dict[str, str], url: str
) -> None:
    """IAM is the explicit URL, else the SDK's override, else the region's (the adapter's or
    the project's), else the global endpoint."""
    from pipestatus.auth.huawei import iam_url

    assert iam_url(explicit, region, project=project, environ=environ) == url


def test_from_env_names_missing_variables_only() -> None:
    """from_env without the SDK's variables names them, and holds no value."""
    with pytest.raises(ValueError, match="HUAWEICLOUD_SDK_SK must be set") as caught:
        HuaweiAKSK.from_env({"HUAWEICLOUD_SDK_AK": "AKVALUE1234"})
    assert "AKVALUE1234" not in str(caught.value)
    aksk = HuaweiAKSK.from_env(
        {
            "HUAWEICLOUD_SDK_AK": "AKVALUE1234",
            "HUAWEICLOUD_SDK_SK": "s",
            "HUAWEICLOUD_SDK_SECURITY_TOKEN": "st",
        }
    )
    assert aksk.ak == "AKVALUE1234"
    assert aksk.project_id is None


def test_token_margins() -> None:
    """A token is renewed max(1 h, 5 %) before expiry, at most half its lifetime; temporary
    keys 40 minutes before, at most half theirs."""
    from pipestatus.auth.huawei import keys_margin, token_margin

    assert token_margin(timedelta(hours=24)) == timedelta(hours=1.2)
    assert token_margin(timedelta(hours=4)) == timedelta(hours=1)
    assert token_margin(timedelta(seconds=2)) == timedelta(seconds=1)
    assert keys_margin(timedelta(hours=6)) == timedelta(minutes=40)
    assert keys_margin(timedelta(minutes=15)) == timedelta(minutes=7.5)


# --- the simulated gateway checks exactly what arrives ----------------------------------------


async def _send(
    server: VendorServer,
    *,
    method: str = "GET",
    path: str = f"/v4/repositories/{REPO}/pipelines/{PIPE}/jobs",
    query: str = "limit=5&offset=0",
    body: bytes | None = None,
    tamper: Callable[[dict[str, str], str, bytes | None], tuple[dict[str, str], str, bytes | None]]
    | None = None,
) -> tuple[int, object]:
    """Sign a request with _sign.sign, let ``tamper`` change it, send it raw; the answer."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    signed = sign(
        method=method,
        url=server.url + path,
        query=query,
        headers=headers,
        body=body,
        ak=AK,
        sk=SK,
        now=server.huawei.now(),
    )
    out, sent_query, sent_body = dict(signed.headers), signed.query, body
    if tamper is not None:
        out, sent_query, sent_body = tamper(out, sent_query, sent_body)
    url = server.url + path + (f"?{sent_query}" if sent_query else "")
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, yarl.URL(url, encoded=True), headers=out, data=sent_body) as resp,
    ):
        return resp.status, await resp.json()


async def test_the_gateway_accepts_exactly_what_was_signed(server: VendorServer) -> None:
    """A request signed by the pure signer and sent as signed is accepted, also with a header
    added that the signature does not cover."""
    assert (await _send(server))[0] == 200

    def extra(
        h: dict[str, str], q: str, b: bytes | None
    ) -> tuple[dict[str, str], str, bytes | None]:
        return {**h, "X-Unsigned-Extra": "1"}, q, b

    assert (await _send(server, tamper=extra))[0] == 200
    assert server.huawei.refused == 0


def _changed_header(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return {**h, "Content-Type": "text/plain"}, q, b


def _reordered_query(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return h, "&".join(reversed(q.split("&"))), b


def _changed_query(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return h, q.replace("limit=5", "limit=6"), b


def _changed_body(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    return h, q, (b or b"") + b" "


def _unsigned_host(
    h: dict[str, str], q: str, b: bytes | None
) -> tuple[dict[str, str], str, bytes | None]:
    value = h["Authorization"].replace("SignedHeaders=content-type;host;", "SignedHeaders=")
    return {**h, "Authorization": value.replace("SignedHeaders=host;", "SignedHeaders=")}, q, b


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        pytest.param(_changed_header, "verify aksk signature fail", id="signed-header"),
        pytest.param(_reordered_query, "canonical form", id="query-order"),
        pytest.param(_changed_query, "verify aksk signature fail", id="query-value"),
        pytest.param(_changed_body, "verify aksk signature fail", id="body"),
        pytest.param(_unsigned_host, "verify aksk signature fail", id="host-not-signed"),
    ],
)
async def test_the_gateway_refuses_what_changed_after_signing(
    server: VendorServer,
    tamper: Callable[[dict[str, str], str, bytes | None], tuple[dict[str, str], str, bytes | None]],
    message: str,
) -> None:
    """A signed header, the query, the body changed after signing, or host left unsigned:
    the gateway's 401 APIGW.0301."""
    if tamper is _changed_body:
        status, answer = await _send(
            server,
            method="POST",
            path=f"/v5/{quote(PROJECT, safe='')}/api/pipelines/status",
            query="",
            body=json.dumps(V5_IDS).encode(),
            tamper=tamper,
        )
    else:
        status, answer = await _send(
            server, body=b"[]" if tamper is _changed_header else None, tamper=tamper
        )
    assert status == 401
    assert isinstance(answer, dict)
    assert answer["error_code"] == "APIGW.0301"
    assert message in answer["error_msg"]
    assert server.huawei.refused == 1
