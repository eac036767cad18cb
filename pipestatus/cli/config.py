"""The ``pipestatus`` command's configuration file: named vendor accounts and the pipelines to
follow, read from TOML and validated into frozen attrs classes.

Pure apart from :func:`load_config` (which reads the file): :func:`parse_config` takes the
decoded TOML, :func:`resolve_tokens` takes the environment as a mapping,
:func:`follow_targets` makes the client's targets (no request), and :func:`setup_problems`
names the accounts whose endpoint cannot be reached or whose token is refused. Every problem is a
:class:`ConfigError` whose message names the file and the key (``accounts.ci.endpoint``), or
the environment variable; no message ever holds a value that could be a token.

Tokens never live in the file: an account names the environment variable that holds its token
(``token_env``), and a literal ``token`` key is refused.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, cast
from urllib.parse import urlsplit

import attrs

from pipestatus.client import Client
from pipestatus.errors import AuthError, PipestatusError, TransportError
from pipestatus.model import Run, Target

__all__ = [
    "EXAMPLE",
    "PIPELINE_IDS",
    "VENDORS",
    "Account",
    "Config",
    "ConfigError",
    "Followed",
    "Pipeline",
    "follow_targets",
    "load_config",
    "parse_config",
    "resolve_tokens",
    "setup_problems",
]

Outcome: TypeAlias = Run | PipestatusError
Vendor: TypeAlias = Literal["codearts_repo", "codearts_pipeline", "yunxiao"]

VENDORS: Final[tuple[Vendor, ...]] = ("codearts_repo", "codearts_pipeline", "yunxiao")

_COMMON: Final = frozenset({"vendor", "endpoint", "token_env"})
#: The keys an account may have, per vendor (besides ``vendor``, ``endpoint``, ``token_env``).
_ACCOUNT_KEYS: Final[dict[Vendor, frozenset[str]]] = {
    "codearts_repo": _COMMON,
    "codearts_pipeline": _COMMON | {"project_id"},
    "yunxiao": _COMMON | {"organization_id", "region_edition"},
}
#: The IDs a pipeline entry gives, per vendor of its account.
PIPELINE_IDS: Final[dict[Vendor, tuple[str, ...]]] = {
    "codearts_repo": ("repository_id", "pipeline_id"),
    "codearts_pipeline": ("pipeline_id",),
    "yunxiao": ("pipeline_id",),
}
_TOP_KEYS: Final = frozenset({"accounts", "pipelines"})
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ACCOUNT_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
_USE_ENV_ADVICE: Final = (
    "a token must not be written in the file: put it in an environment variable "
    "and name that variable with token_env"
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


@attrs.frozen(kw_only=True)
class Account:
    """One vendor account: where to send requests and which variable holds the token."""

    name: str
    vendor: Vendor
    endpoint: str
    token_env: str
    project_id: str | None = None
    organization_id: str | None = None
    region_edition: bool = False


@attrs.frozen(kw_only=True)
class Pipeline:
    """One pipeline to follow: its account, its IDs in the vendor's order, a display name."""

    account: str
    ids: tuple[str, ...]
    name: str | None = None
    index: int = 0  # position in the file, for messages (pipelines[index])

    @property
    def label(self) -> str:
        """The display name, or ``account/id[/id]``."""
        return self.name or f"{self.account}/{'/'.join(self.ids)}"


@attrs.frozen(kw_only=True)
class Config:
    """A validated configuration: accounts by name and pipelines in file order."""

    source: str
    accounts: Mapping[str, Account]
    pipelines: tuple[Pipeline, ...]


def load_config(path: str | Path) -> Config:
    """Read and validate the TOML file at ``path``."""
    source = str(path)
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such file (write an example with `pipestatus init`)"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid TOML: not UTF-8 text") from None
    return parse_config(data, source=source)


def parse_config(data: Mapping[str, object], *, source: str) -> Config:
    """Validate decoded TOML; raise :class:`ConfigError` naming ``source`` and the key."""

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {key}: {problem}")

    if "token" in data:
        raise fail("token", _USE_ENV_ADVICE)
    for key in data:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown key (expected {_one_of(_TOP_KEYS)})")
    raw_accounts = data.get("accounts")
    if not isinstance(raw_accounts, dict) or not raw_accounts:
        raise fail("accounts", "missing: add at least one [accounts.NAME] table")
    accounts: dict[str, Account] = {}
    for name, raw in raw_accounts.items():
        accounts[name] = _account(name, raw, fail)
    raw_pipelines = data.get("pipelines")
    if not isinstance(raw_pipelines, list) or not raw_pipelines:
        raise fail("pipelines", "missing: add at least one [[pipelines]] entry")
    pipelines: list[Pipeline] = []
    seen_ids: dict[tuple[str, tuple[str, ...]], int] = {}
    seen_labels: dict[str, int] = {}
    for index, raw in enumerate(raw_pipelines):
        pipeline = _pipeline(index, raw, accounts, fail)
        ident = (pipeline.account, pipeline.ids)
        if ident in seen_ids:
            raise fail(f"pipelines[{index}]", f"the same pipeline as pipelines[{seen_ids[ident]}]")
        if pipeline.label in seen_labels:
            raise fail(
                f"pipelines[{index}].name",
                f"the same name as pipelines[{seen_labels[pipeline.label]}]",
            )
        seen_ids[ident] = index
        seen_labels[pipeline.label] = index
        pipelines.append(pipeline)
    return Config(source=source, accounts=accounts, pipelines=tuple(pipelines))


def resolve_tokens(config: Config, environ: Mapping[str, str]) -> dict[str, str]:
    """Each account's token, read from the environment variable it names.

    Only the accounts that some pipeline uses are read.
    """
    used = {pipeline.account for pipeline in config.pipelines}
    tokens: dict[str, str] = {}
    for name, account in config.accounts.items():
        if name not in used:
            continue
        value = environ.get(account.token_env, "")
        if not value.strip():
            state = "is empty" if account.token_env in environ else "is not set"
            raise ConfigError(
                f"{config.source}: accounts.{name}.token_env: "
                f"environment variable {account.token_env} {state}"
            )
        tokens[name] = value.strip()
    return tokens


@attrs.frozen(kw_only=True)
class Followed:
    """A pipeline the command follows: its names, its target and its account's home URL."""

    label: str
    account: str
    vendor: str
    ids: tuple[tuple[str, str], ...]  # (key, value), in the vendor's order
    target: Target
    home: str


def follow_targets(client: Client, config: Config, tokens: Mapping[str, str]) -> list[Followed]:
    """Each configured pipeline with its target, made by an adapter per account on ``client``
    (no request is sent). IDs the vendor refuses raise ``ConfigError`` naming the entry."""
    adapters: dict[str, Any] = {}
    for name, account in config.accounts.items():
        if name not in tokens:
            continue
        try:
            if account.vendor == "codearts_repo":
                adapter: Any = client.codearts_repo(account.endpoint, token=tokens[name])
            elif account.vendor == "codearts_pipeline":
                assert account.project_id is not None
                adapter = client.codearts_pipeline(
                    account.endpoint, project_id=account.project_id, token=tokens[name]
                )
            else:
                adapter = client.yunxiao(
                    account.endpoint,
                    token=tokens[name],
                    organization_id=account.organization_id,
                    region_edition=account.region_edition,
                )
        except ValueError as exc:
            raise ConfigError(f"{config.source}: accounts.{name}: {exc}") from None
        adapters[name] = adapter
    out = []
    for pipeline in config.pipelines:
        account = config.accounts[pipeline.account]
        try:
            target = adapters[pipeline.account].target(*pipeline.ids)
        except ValueError as exc:
            raise ConfigError(f"{config.source}: pipelines[{pipeline.index}]: {exc}") from None
        out.append(
            Followed(
                label=pipeline.label,
                account=pipeline.account,
                vendor=account.vendor,
                ids=tuple(zip(PIPELINE_IDS[account.vendor], target.ids, strict=True)),
                target=target,
                home=account.endpoint,
            )
        )
    return out


def setup_problems(
    config: Config, followed: Sequence[Followed], outcomes: Mapping[Target, Outcome]
) -> list[str]:
    """One line per account that no pipeline could be read from because its endpoint cannot
    be reached or its token is refused: configuration errors, not pipeline errors."""
    by_account: dict[str, list[Outcome]] = {}
    for item in followed:
        if item.target in outcomes:
            by_account.setdefault(item.account, []).append(outcomes[item.target])
    lines = []
    for name, seen in by_account.items():
        account = config.accounts[name]
        where = f"{config.source}: accounts.{name}"
        if all(isinstance(o, TransportError) for o in seen):
            lines.append(f"{where}.endpoint: cannot reach {account.endpoint}: {seen[0]}")
        elif all(isinstance(o, AuthError) for o in seen):
            lines.append(
                f"{where}.token_env: the token in {account.token_env} was refused: {seen[0]}"
            )
    return lines


# --- the parts ------------------------------------------------------------------------------------


_Fail: TypeAlias = Callable[[str, str], ConfigError]  # parse_config's ``fail``


def _one_of(keys: frozenset[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(keys))


def _account(name: str, raw: object, fail: _Fail) -> Account:
    where = f"accounts.{name}"
    if not _ACCOUNT_NAME.fullmatch(name):
        raise fail(where, "account names use letters, digits, '.', '_' and '-' only")
    if not isinstance(raw, dict):
        raise fail(where, "must be a table: [accounts.NAME]")
    if "token" in raw:
        raise fail(f"{where}.token", _USE_ENV_ADVICE)
    vendor = raw.get("vendor")
    if vendor is None:
        raise fail(f"{where}.vendor", f"missing (one of {', '.join(VENDORS)})")
    if vendor not in VENDORS:
        raise fail(f"{where}.vendor", f"must be one of {', '.join(VENDORS)}")
    vendor = cast(Vendor, vendor)
    allowed = _ACCOUNT_KEYS[vendor]
    for key in raw:
        if key not in allowed:
            raise fail(f"{where}.{key}", f"unknown key for {vendor} (expected {_one_of(allowed)})")
    endpoint = _string(raw, "endpoint", where, fail, required=True)
    assert endpoint is not None
    _check_endpoint(endpoint, f"{where}.endpoint", fail)
    token_env = _string(raw, "token_env", where, fail, required=True)
    assert token_env is not None
    if not _ENV_NAME.fullmatch(token_env):
        raise fail(
            f"{where}.token_env",
            "must be the name of an environment variable (letters, digits, '_'), not a token",
        )
    project_id = _string(raw, "project_id", where, fail, required=vendor == "codearts_pipeline")
    organization_id = _string(raw, "organization_id", where, fail, required=False)
    region_edition = raw.get("region_edition", False)
    if not isinstance(region_edition, bool):
        raise fail(f"{where}.region_edition", "must be true or false")
    if region_edition and organization_id is not None:
        raise fail(
            f"{where}.organization_id",
            "the region edition's path takes no organization_id: drop one of the two",
        )
    return Account(
        name=name,
        vendor=vendor,
        endpoint=endpoint.strip().rstrip("/"),
        token_env=token_env,
        project_id=project_id,
        organization_id=organization_id,
        region_edition=region_edition,
    )


def _pipeline(index: int, raw: object, accounts: Mapping[str, Account], fail: _Fail) -> Pipeline:
    where = f"pipelines[{index}]"
    if not isinstance(raw, dict):
        raise fail(where, "must be a table: [[pipelines]]")
    if "token" in raw:
        raise fail(f"{where}.token", _USE_ENV_ADVICE)
    account_name = _string(raw, "account", where, fail, required=True)
    assert account_name is not None
    account = accounts.get(account_name)
    if account is None:
        raise fail(
            f"{where}.account", f"no account of that name (accounts: {_one_of(tuple(accounts))})"
        )
    id_keys = PIPELINE_IDS[account.vendor]
    allowed = frozenset({"account", "name", *id_keys})
    for key in raw:
        if key not in allowed:
            raise fail(
                f"{where}.{key}", f"unknown key for {account.vendor} (expected {_one_of(allowed)})"
            )
    ids: list[str] = []
    for key in id_keys:
        value = raw.get(key)
        if value is None:
            raise fail(f"{where}.{key}", "missing")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise fail(f"{where}.{key}", "must be a string or an integer")
        text = str(value).strip()
        if not text:
            raise fail(f"{where}.{key}", "must not be empty")
        ids.append(text)
    name = _string(raw, "name", where, fail, required=False)
    return Pipeline(account=account_name, ids=tuple(ids), name=name, index=index)


def _string(
    raw: Mapping[str, object], key: str, where: str, fail: _Fail, *, required: bool
) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise fail(f"{where}.{key}", "missing")
        return None
    if not isinstance(value, str):
        raise fail(f"{where}.{key}", "must be a string")
    if not value.strip():
        raise fail(f"{where}.{key}", "must not be empty")
    return value.strip()


def _check_endpoint(url: str, key: str, fail: _Fail) -> None:
    # The URL is never echoed: a pasted URL may hold credentials.
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises on an invalid port
    except ValueError:
        raise fail(key, "not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise fail(key, "must be http(s)://host[:port][/prefix]")
    if parts.username is not None or parts.password is not None:
        raise fail(key, "must not carry credentials: name the token's variable with token_env")
    if parts.query or parts.fragment:
        raise fail(key, "must not have a query or fragment")


#: What ``pipestatus init`` writes: every key, commented.
EXAMPLE: Final = """\
# pipestatus configuration: the vendor accounts to read and the pipelines to follow.
#
#   pipestatus status -c pipestatus.toml          one table (--json: one JSON document)
#   pipestatus watch  -c pipestatus.toml          one line per change (--json: JSON Lines)
#   pipestatus cctray -c pipestatus.toml --serve 127.0.0.1:8080   a CCTray feed
#
# Tokens never go in this file: each account names the environment variable that holds
# its token (token_env), e.g. `export HUAWEI_TOKEN=...` before running pipestatus.

# --- accounts: one table per vendor account, [accounts.NAME] ---------------------------

# Huawei Cloud CodeArts Repo (API v4): pipelines are (repository_id, pipeline_id).
[accounts.huawei-repo]
vendor = "codearts_repo"
endpoint = "https://codehub-ext.cn-north-4.myhuaweicloud.com"
token_env = "HUAWEI_TOKEN"

# Huawei Cloud CodeArts Pipeline (API v5): one project per account.
[accounts.huawei-pipeline]
vendor = "codearts_pipeline"
endpoint = "https://cloudpipeline-ext.cn-north-4.myhuaweicloud.com"
project_id = "0123456789abcdef0123456789abcdef"
token_env = "HUAWEI_TOKEN"

# Alibaba Cloud Yunxiao Flow. organization_id selects the central site's path form;
# region_edition = true selects the region edition's (which takes no organization_id).
[accounts.yunxiao]
vendor = "yunxiao"
endpoint = "https://openapi-rdc.aliyuncs.com"
organization_id = "60d54f3daccf2bbd6659f3ad"
# region_edition = false
token_env = "YUNXIAO_TOKEN"

# --- pipelines: one [[pipelines]] entry each; name is optional -------------------------

[[pipelines]]
account = "huawei-repo"
repository_id = 2111976239
pipeline_id = 6
name = "backend"

[[pipelines]]
account = "huawei-pipeline"
pipeline_id = "d1971a2b3c4d4e5f8a9b0c1d2e3f4a5b"
name = "release"

[[pipelines]]
account = "yunxiao"
pipeline_id = "123"
"""
