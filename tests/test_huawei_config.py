"""Huawei accounts in the configuration file: ``auth = "aksk"`` and ``auth = "iam"`` with their
keys, ``region`` in place of ``endpoint``, and the example ``pipestatus init`` writes."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from pipestatus import Client
from pipestatus.auth import HuaweiAKSK, HuaweiIAM
from pipestatus.cli.config import (
    EXAMPLE,
    ConfigError,
    follow_targets,
    parse_config,
    resolve_tokens,
)
from pipestatus.vendors import REGISTRY

SK = "sk-SECRET-77aa11bb"
PASSWORD = "pw-SECRET-22cc33dd"
ENV = {"CI_AK": "AKID00000000000001", "CI_SK": SK, "CI_PW": PASSWORD}


def a_config(vendor: str = "codearts_repo", **account: Any) -> dict[str, Any]:
    """One Huawei account (AK/SK in a region unless ``account`` says otherwise) and one
    pipeline of it."""
    ids = dict(zip(REGISTRY[vendor].id_names, REGISTRY[vendor].demo.ids(1), strict=True))
    base = {"vendor": vendor, "region": "cn-north-4", "auth": "aksk"}
    base |= {"ak_env": "CI_AK", "sk_env": "CI_SK", **REGISTRY[vendor].demo.options}
    merged = {k: v for k, v in {**base, **account}.items() if v is not None}
    return {"accounts": {"ci": merged}, "pipelines": [{"account": "ci", **ids}]}


def parse(data: dict[str, Any]) -> Any:
    return parse_config(data, source="conf.toml")


def problem(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return str(info.value)


def test_an_aksk_account_in_a_region() -> None:
    """auth = "aksk" with ak_env and sk_env in a region gives HuaweiAKSK credentials read
    from those variables and an adapter at the region's endpoint."""
    config = parse(a_config())
    account = config.accounts["ci"]
    assert (account.region, account.endpoint, account.auth) == ("cn-north-4", None, "aksk")
    (secret,) = resolve_tokens(config, ENV).values()
    assert isinstance(secret, HuaweiAKSK)
    assert secret.ak == ENV["CI_AK"]
    (followed,) = follow_targets(Client(), config, {"ci": secret})
    assert followed.home == "https://codehub-ext.cn-north-4.myhuaweicloud.com"


def test_an_aksk_account_with_a_security_token() -> None:
    """security_token_env adds the security token of temporary keys; its variable must be set."""
    config = parse(a_config(security_token_env="CI_ST"))
    with pytest.raises(ConfigError, match=r"accounts\.ci\.security_token_env: .*CI_ST is not set"):
        resolve_tokens(config, ENV)
    (secret,) = resolve_tokens(config, {**ENV, "CI_ST": "st-SECRET"}).values()
    assert "st-SECRET" not in repr(secret)


def test_an_iam_account() -> None:
    """auth = "iam" with user, domain, password_env and project gives HuaweiIAM credentials."""
    data = a_config(
        "codearts_pipeline",
        auth="iam",
        ak_env=None,
        sk_env=None,
        user="ci-reader",
        domain="acme",
        password_env="CI_PW",
        project="cn-north-4",
    )
    (secret,) = resolve_tokens(parse(data), ENV).values()
    assert isinstance(secret, HuaweiIAM)
    assert (secret.user, secret.domain, secret.project) == ("ci-reader", "acme", "cn-north-4")
    assert PASSWORD not in repr(secret)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"CI_SK": SK}, "accounts.ci.ak_env: environment variable CI_AK", id="ak"),
        pytest.param(
            {"CI_AK": "A" * 20}, "accounts.ci.sk_env: environment variable CI_SK", id="sk"
        ),
        pytest.param({"CI_AK": "A" * 20, "CI_SK": " "}, "CI_SK is empty", id="empty"),
    ],
)
def test_missing_key_variables_are_named(environ: dict[str, str], message: str) -> None:
    """A missing or empty key variable is an error naming the key and the variable."""
    with pytest.raises(ConfigError) as info:
        resolve_tokens(parse(a_config()), environ)
    assert message in str(info.value)
    assert SK not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            a_config(auth=None, ak_env=None, sk_env=None, token_env="T", user="u"),
            'accounts.ci.user: belongs to auth = "iam" (this account has auth = "token")',
            id="other-scheme-key",
        ),
        pytest.param(
            a_config(auth="oauth"),
            'accounts.ci.auth: must be one of "token", "aksk", "iam"',
            id="scheme",
        ),
        pytest.param(
            a_config(endpoint="https://x.example"),
            "accounts.ci.region: give endpoint or region, not both",
            id="both-places",
        ),
        pytest.param(
            a_config(region=None), "accounts.ci.endpoint: missing (or give region)", id="none"
        ),
        pytest.param(a_config(sk_env=None), "accounts.ci.sk_env: missing", id="missing-sk-env"),
        pytest.param(
            a_config(sk_env=SK),
            "accounts.ci.sk_env: must be the name of an environment",
            id="sk-pasted",
        ),
        pytest.param(a_config(region=7), "accounts.ci.region: must be a string", id="region-type"),
    ],
)
def test_huawei_account_problems_name_the_key(data: dict[str, Any], message: str) -> None:
    """Each mistake of a Huawei account names the key at fault, and never a secret."""
    text = problem(data)
    assert message in text
    assert SK not in text


def test_unknown_key_lists_the_keys_of_this_kind_of_account() -> None:
    """An unknown key of an AK/SK account in a region lists exactly the keys it may have."""
    assert problem(a_config(colour="red")) == (
        "conf.toml: accounts.ci.colour: unknown key for codearts_repo "
        "(expected ak_env, auth, region, security_token_env, sk_env, vendor)"
    )


def test_other_vendors_have_neither_regions_nor_huawei_schemes() -> None:
    """A Yunxiao account refuses region and auth = "aksk"."""
    yunxiao = {"vendor": "yunxiao", "endpoint": "https://flow.example", "token_env": "T"}
    pipelines = [{"account": "ci", "pipeline_id": "1"}]
    with_region = {**yunxiao, "region": "cn-north-4"}
    assert "accounts.ci.region: unknown key for yunxiao" in problem(
        {"accounts": {"ci": with_region}, "pipelines": pipelines}
    )
    with_aksk = {**yunxiao, "auth": "aksk"}
    assert 'accounts.ci.auth: must be one of "token" for yunxiao' in problem(
        {"accounts": {"ci": with_aksk}, "pipelines": pipelines}
    )


def test_an_unknown_region_is_named_with_the_known_ones() -> None:
    """A region the vendor's table lacks is a ConfigError at accounts.ci.region listing the
    known regions."""
    config = parse(a_config(region="mars-1"))
    with pytest.raises(ConfigError) as info:
        follow_targets(Client(), config, resolve_tokens(config, ENV))
    text = str(info.value)
    assert text.startswith("conf.toml: accounts.ci.region: unknown region 'mars-1'")
    assert "cn-north-4" in text


def test_a_region_follows_the_sdks_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's endpoint override for a region is honoured by the configuration too."""
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_CODEARTSREPO_CN_NORTH_4", "http://127.0.0.1:9")
    config = parse(a_config())
    (followed,) = follow_targets(Client(), config, resolve_tokens(config, ENV))
    assert followed.home == "http://127.0.0.1:9"


def test_the_example_shows_both_huawei_schemes() -> None:
    """`pipestatus init`'s example gives one Huawei account on AK/SK and one on IAM, each in a
    region, and shows the other scheme (and a plain token) commented."""
    config = parse_config(tomllib.loads(EXAMPLE), source="example")
    schemes = {a.vendor: a.auth for a in config.accounts.values()}
    assert schemes["codearts_repo"] == "aksk"
    assert schemes["codearts_pipeline"] == "iam"
    assert all(a.region == "cn-north-4" for a in config.accounts.values() if a.vendor != "yunxiao")
    for line in ('# auth = "iam"', '# auth = "aksk"', '# auth = "token"', "# security_token_env"):
        assert line in EXAMPLE


async def test_the_demo_reads_one_huawei_account_with_aksk_and_one_with_iam() -> None:
    """The demo fleet's CodeArts Repo account signs its requests with AK/SK and its CodeArts
    Pipeline account uses an IAM token (fetched once), both accepted by the simulated server."""
    from pipestatus.cli.demo import demo_fleet
    from pipestatus.model import Run
    from pipestatus.testing import VendorServer, make_fleet

    async with VendorServer() as server, Client(retries=0) as client:
        make_fleet(server, 2)
        fleet = demo_fleet(client, server.url, server.token, 2)
        results = await client.poll(item.target for item in fleet)
        assert all(isinstance(outcome, Run) for outcome in results.values())
        by_vendor: dict[str, list[dict[str, str]]] = {}
        for request in server.requests:
            by_vendor.setdefault(request.vendor or "", []).append(request.headers)
    header = REGISTRY["codearts_repo"].header.lower()
    repo = [h for h in by_vendor["codearts_repo"] if "authorization" in h]
    assert len(repo) == 2
    assert all(h["authorization"].startswith("SDK-HMAC-SHA256 ") for h in repo)
    pipe = by_vendor["codearts_pipeline"]
    assert pipe
    assert all(h[header] != server.token for h in pipe)
    tokens = [r for r in server.requests if r.path == "/v3/auth/tokens"]
    assert len(tokens) == 1
    assert server.huawei.refused == 0
