"""The ``pipestatus`` command's configuration file: parsing, validation and tokens."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import attrs
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
from pipestatus.vendors import REGISTRY, VendorSpec
from pipestatus.vendors._spec import OptionError

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


# --- read from the registry ---------------------------------------------------------------------


def an_account_of(spec: VendorSpec[Any, Any], **options: Any) -> dict[str, Any]:
    """A one-account configuration of ``spec``'s vendor, its demo options merged with
    ``options``, following its first demo pipeline."""
    ids = dict(zip(spec.id_names, spec.demo.ids(1), strict=True))
    account = {"vendor": spec.key, "endpoint": "https://ci.example", "token_env": "CI_TOKEN"}
    return {
        "accounts": {"ci": {**account, **spec.demo.options, **options}},
        "pipelines": [{"account": "ci", **ids}],
    }


SPECS = [pytest.param(spec, id=key) for key, spec in REGISTRY.items()]
#: Every option of every vendor, as (spec, field name).
OPTIONS = [
    pytest.param(spec, field.name, id=f"{key}.{field.name}")
    for key, spec in REGISTRY.items()
    for field in attrs.fields(spec.options)
]
#: The options a vendor's account must give (no default).
REQUIRED = [
    pytest.param(spec, field.name, id=f"{key}.{field.name}")
    for key, spec in REGISTRY.items()
    for field in attrs.fields(spec.options)
    if field.default is attrs.NOTHING
]


def test_example_has_one_account_per_registered_vendor() -> None:
    """`init`'s example parses into one account and one pipeline of every registered vendor,
    each as its spec writes them."""
    config = parse(tomllib.loads(EXAMPLE))
    assert sorted(a.vendor for a in config.accounts.values()) == sorted(REGISTRY)
    vendors = [config.accounts[p.account].vendor for p in config.pipelines]
    assert sorted(vendors) == sorted(REGISTRY)
    for spec in REGISTRY.values():
        assert spec.example_account in EXAMPLE
        assert spec.example_pipeline in EXAMPLE


@pytest.mark.parametrize("spec", SPECS)
def test_every_vendor_accepts_its_demo_options(spec: VendorSpec[Any, Any]) -> None:
    """An account of each registered vendor with its spec's demo options parses into those
    options, and its pipeline's target carries the spec's IDs."""
    config = parse(an_account_of(spec))
    account = config.accounts["ci"]
    assert account.vendor == spec.key
    assert account.options == spec.options(**spec.demo.options)
    (followed,) = follow_targets(Client(), config, {"ci": "t"})
    assert followed.target.ids == spec.demo.ids(1)
    assert followed.ids == tuple(zip(spec.id_names, spec.demo.ids(1), strict=True))
    assert followed.vendor == spec.key


@pytest.mark.parametrize("spec", SPECS)
def test_unknown_key_lists_the_vendors_keys(spec: VendorSpec[Any, Any]) -> None:
    """An unknown account key is refused, naming the vendor and exactly its keys: the common
    three and the fields of its options class."""
    keys = {"vendor", "endpoint", "token_env", *(f.name for f in attrs.fields(spec.options))}
    with pytest.raises(ConfigError) as info:
        parse(an_account_of(spec, colour="red"))
    assert str(info.value) == (
        f"conf.toml: accounts.ci.colour: unknown key for {spec.key} "
        f"(expected {', '.join(sorted(keys))})"
    )


@pytest.mark.parametrize(("spec", "option"), REQUIRED)
def test_a_required_option_is_missing(spec: VendorSpec[Any, Any], option: str) -> None:
    """An option without a default in the vendor's options class must be given."""
    data = an_account_of(spec)
    del data["accounts"]["ci"][option]
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value) == f"conf.toml: accounts.ci.{option}: missing"


@pytest.mark.parametrize(("spec", "option"), OPTIONS)
def test_an_option_of_the_wrong_type_is_addressed(spec: VendorSpec[Any, Any], option: str) -> None:
    """An option given a value of the wrong type (a list) is refused at its key path, and the
    value is not repeated."""
    with pytest.raises(ConfigError) as info:
        parse(an_account_of(spec, **{option: [SECRET]}))
    assert str(info.value).startswith(f"conf.toml: accounts.ci.{option}: must be ")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"batch_size": "ten"}, "accounts.ci.batch_size: must be an integer", id="int-as-str"
        ),
        pytest.param(
            {"batch_size": True}, "accounts.ci.batch_size: must be an integer", id="int-as-bool"
        ),
        pytest.param(
            {"batch_size": 0}, "accounts.ci.batch_size: must be in 1..1000", id="adapter-range"
        ),
        pytest.param(
            {"project_id": ".."}, "accounts.ci.project_id: must not be '..'", id="adapter-id"
        ),
    ],
)
def test_v5_option_errors_name_the_option(options: dict[str, Any], message: str) -> None:
    """A v5 account's options are checked by type, then by the adapter's own checks, each
    problem addressed to the option at fault while the file is read."""
    with pytest.raises(ConfigError) as info:
        parse(an_account_of(REGISTRY["codearts_pipeline"], **options))
    assert str(info.value) == f"conf.toml: {message}"


def test_pipeline_id_of_the_wrong_type_is_addressed() -> None:
    """A pipeline ID that is neither a string nor an integer is refused at its key path."""
    data = a_config()
    data["pipelines"] = [{"account": "ci", "pipeline_id": True}]
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value) == (
        "conf.toml: pipelines[0].pipeline_id: must be a string or an integer"
    )


def test_ids_are_checked_while_the_file_is_read() -> None:
    """An ID its vendor's IdParam.check refuses is reported by parse_config, naming the entry."""
    data = a_config()
    data["pipelines"] = [{"account": "ci", "pipeline_id": ".."}]
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert str(info.value) == "conf.toml: pipelines[0]: pipeline_id must not be '..'"


def test_load_reports_a_directory(tmp_path: Path) -> None:
    """A directory given as the file is an error naming it."""
    with pytest.raises(ConfigError, match=r": is a directory, not a configuration file$"):
        load_config(tmp_path)


def test_load_reports_text_that_is_not_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is an error naming the file."""
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "Müller"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not valid TOML"):
        load_config(path)


@pytest.mark.parametrize("spec", SPECS)
def test_readme_lists_every_vendors_configuration_keys(spec: VendorSpec[Any, Any]) -> None:
    """The README's table of configuration keys has a row for each registered vendor naming
    exactly its options and its pipeline IDs."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    start = lines.index("| vendor | account keys | pipeline keys |")
    table = lines[start : lines.index("", start)]
    (row,) = [line for line in table if line.startswith(f"| `{spec.key}` | ")]
    _, _, accounts, pipelines, _ = row.split("|")
    assert set(re.findall(r"`(\w+)`", accounts)) == {f.name for f in attrs.fields(spec.options)}
    assert re.findall(r"`(\w+)`", pipelines) == list(spec.id_names)


# --- the converter, on an options class of its own -----------------------------------------------


@attrs.frozen(kw_only=True)
class Window:
    size: int = 1


@attrs.frozen(kw_only=True)
class ToyOptions:
    """An options class with a check of its own and a nested table."""

    limit: int = attrs.field(default=1)
    window: Window | None = None

    @limit.validator
    def _limit(self, attribute: Any, value: int) -> None:
        if value > 5:
            raise OptionError("limit", "must be at most 5")


@pytest.mark.parametrize(
    ("given", "key", "problem"),
    [
        pytest.param({"limit": "6"}, "accounts.ci.limit", "must be an integer", id="wrong-type"),
        pytest.param({"limit": 6}, "accounts.ci.limit", "must be at most 5", id="class-check"),
        pytest.param(
            {"window": {"size": 2, "shape": "round"}},
            "accounts.ci.window",
            "unknown key (shape)",
            id="nested-unknown-key",
        ),
        pytest.param(
            {"window": {"size": 2.5}}, "accounts.ci.window.size", "must be an integer", id="nested"
        ),
        pytest.param({"window": "wide"}, "accounts.ci.window", "must be a table", id="not-a-table"),
    ],
)
def test_converter_addresses_every_problem(given: dict[str, Any], key: str, problem: str) -> None:
    """Whatever cattrs or the class itself raises while structuring options becomes one
    Problem at a key path, and the class's own check is addressed to the option it names."""
    from pipestatus.cli.convert import Problem, structure

    with pytest.raises(Problem) as info:
        structure(given, ToyOptions, "accounts.ci")
    assert (info.value.key, info.value.problem) == (key, problem)
