"""The ``pipestatus`` command's configuration file: parsing, validation and tokens."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pipestatus import Client
from pipestatus.cli.config import (
    EXAMPLE,
    Config,
    ConfigError,
    follow_targets,
    load_config,
    parse_config,
    resolve_tokens,
)

SECRET = "tok-3f9a8b7c6d5e4f"


def a_config(**account: Any) -> dict[str, Any]:
    """A one-account, one-pipeline Yunxiao configuration with ``account`` keys merged in."""
    return {
        "accounts": {
            "ci": {
                "vendor": "yunxiao",
                "endpoint": "https://flow.example",
                "token_env": "CI_TOKEN",
                **account,
            }
        },
        "pipelines": [{"account": "ci", "pipeline_id": "123"}],
    }


def parse(data: dict[str, Any]) -> Config:
    return parse_config(data, source="conf.toml")


def test_example_is_valid() -> None:
    """The file `pipestatus init` writes parses into three accounts, one per vendor."""
    config = parse(tomllib.loads(EXAMPLE))
    assert {a.vendor for a in config.accounts.values()} == {
        "codearts_repo",
        "codearts_pipeline",
        "yunxiao",
    }
    assert [p.ids for p in config.pipelines] == [
        ("2111976239", "6"),
        ("d1971a2b3c4d4e5f8a9b0c1d2e3f4a5b",),
        ("123",),
    ]
    assert [p.label for p in config.pipelines] == ["backend", "release", "yunxiao/123"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        pytest.param({**a_config(), "token": SECRET}, "conf.toml: token:", id="top-level"),
        pytest.param(a_config(token=SECRET), "conf.toml: accounts.ci.token:", id="account"),
        pytest.param(
            {**a_config(), "pipelines": [{"account": "ci", "pipeline_id": "1", "token": SECRET}]},
            "conf.toml: pipelines[0].token:",
            id="pipeline",
        ),
    ],
)
def test_literal_token_is_refused(data: dict[str, Any], key: str) -> None:
    """A `token` key anywhere is refused with advice to use token_env, and its value is not
    repeated."""
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value).startswith(key)
    assert "token_env" in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"accounts": {}}, "conf.toml: accounts: missing", id="no-accounts"),
        pytest.param({**a_config(), "colour": 1}, "conf.toml: colour: unknown key", id="top-key"),
        pytest.param(a_config(colour="red"), "accounts.ci.colour: unknown key", id="account-key"),
        pytest.param(a_config(vendor="gitlab"), "accounts.ci.vendor: must be one of", id="vendor"),
        pytest.param(
            a_config(project_id="p"), "accounts.ci.project_id: unknown key for yunxiao", id="v5-key"
        ),
        pytest.param(
            a_config(region_edition=True, organization_id="org"),
            "accounts.ci.organization_id: the region edition's path takes no",
            id="region-and-org",
        ),
        pytest.param(a_config(region_edition="yes"), "region_edition: must be true", id="bool"),
        pytest.param(a_config(endpoint="ftp://x"), "accounts.ci.endpoint: must be", id="scheme"),
        pytest.param(a_config(token_env=""), "accounts.ci.token_env: must not be empty", id="env"),
        pytest.param(
            {**a_config(), "pipelines": [{"account": "nope", "pipeline_id": "1"}]},
            "pipelines[0].account: no account of that name",
            id="unknown-account",
        ),
        pytest.param(
            {**a_config(), "pipelines": [{"account": "ci", "repository_id": 1, "pipeline_id": 2}]},
            "pipelines[0].repository_id: unknown key for yunxiao",
            id="pipeline-key",
        ),
        pytest.param(
            {**a_config(), "pipelines": [{"account": "ci"}]},
            "pipelines[0].pipeline_id: missing",
            id="missing-id",
        ),
        pytest.param(
            {**a_config(), "pipelines": [{"account": "ci", "pipeline_id": "1"}] * 2},
            "pipelines[1]: the same pipeline as pipelines[0]",
            id="duplicate",
        ),
        pytest.param(
            {
                **a_config(),
                "pipelines": [
                    {"account": "ci", "pipeline_id": "1", "name": "x"},
                    {"account": "ci", "pipeline_id": "2", "name": "x"},
                ],
            },
            "pipelines[1].name: the same name as pipelines[0]",
            id="duplicate-name",
        ),
    ],
)
def test_invalid_configuration_names_the_key(data: dict[str, Any], message: str) -> None:
    """Each invalid entry raises ConfigError naming the file and the key at fault."""
    with pytest.raises(ConfigError, match=r"^conf\.toml: ") as info:
        parse(data)
    assert message in str(info.value)


def test_v5_account_needs_a_project() -> None:
    """A codearts_pipeline account without project_id is refused."""
    data = a_config(vendor="codearts_pipeline")
    with pytest.raises(ConfigError, match=r"accounts\.ci\.project_id: missing"):
        parse(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint", f"https://user:{SECRET}@flow.example"),
        ("token_env", SECRET.replace("-", "+")),
    ],
)
def test_misplaced_secret_is_not_echoed(field: str, value: str) -> None:
    """A token pasted into the endpoint or token_env is refused without being repeated."""
    with pytest.raises(ConfigError) as info:
        parse(a_config(**{field: value}))
    assert f"accounts.ci.{field}:" in str(info.value)
    assert SECRET not in str(info.value)
    assert SECRET.replace("-", "+") not in str(info.value)


def test_tokens_come_from_the_environment() -> None:
    """Each used account's token is read from the variable its token_env names."""
    config = parse(a_config())
    assert resolve_tokens(config, {"CI_TOKEN": f" {SECRET}\n"}) == {"ci": SECRET}


@pytest.mark.parametrize(
    ("environ", "state"), [({}, "is not set"), ({"CI_TOKEN": " "}, "is empty")]
)
def test_missing_token_variable_is_named(environ: dict[str, str], state: str) -> None:
    """A missing or empty token variable is an error naming the key and the variable."""
    with pytest.raises(ConfigError) as info:
        resolve_tokens(parse(a_config()), environ)
    assert str(info.value) == (
        f"conf.toml: accounts.ci.token_env: environment variable CI_TOKEN {state}"
    )


def test_unused_account_needs_no_token() -> None:
    """An account no pipeline uses does not need its variable set."""
    data = a_config()
    data["accounts"]["spare"] = {
        "vendor": "codearts_repo",
        "endpoint": "https://x.example",
        "token_env": "SPARE",
    }
    assert resolve_tokens(parse(data), {"CI_TOKEN": "t"}) == {"ci": "t"}


def test_load_reports_bad_toml_with_the_file(tmp_path: Path) -> None:
    """A file that is not TOML gives an error naming the file and the position."""
    path = tmp_path / "bad.toml"
    path.write_text("[accounts.ci\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: .*line 1"):
        load_config(path)


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    """A missing file gives an error naming it and suggesting `pipestatus init`."""
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file .*pipestatus init"):
        load_config(tmp_path / "nope.toml")


def test_ids_the_vendor_refuses_name_the_entry() -> None:
    """A v4 ID out of range is a ConfigError naming the pipeline entry, before any request."""
    data = a_config(vendor="codearts_repo")
    data["pipelines"] = [{"account": "ci", "repository_id": 0, "pipeline_id": 1}]
    with pytest.raises(ConfigError, match=r"^conf\.toml: pipelines\[0\]: repository_id must be"):
        follow_targets(Client(), parse(data), {"ci": "t"})
