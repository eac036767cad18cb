"""The ``pipestatus`` command's configuration file: named vendor accounts and the pipelines to
follow, read from TOML and structured into frozen attrs classes.

The file's shape comes from the vendor registry (:data:`pipestatus.vendors.REGISTRY`), not from
tables here. An account is ``vendor``, where its requests go (``endpoint``, or ``region`` for a
vendor with regions, ``spec.regions``), its credentials (``auth``, one of the vendor's
``spec.auth_schemes``, default ``"token"``, and that scheme's keys: :data:`SCHEMES`) plus the
fields of its vendor's ``spec.options`` class (those fields are the vendor's configuration keys,
with the class's types and defaults); a pipeline entry is ``account``, an optional ``name`` and
the vendor's ``spec.id_names``, each checked with its ``IdParam.check``. Values are structured by
the one converter of :mod:`pipestatus.cli.convert`.

Pure apart from :func:`load_config` (which reads the file, with a size cap and a deadline for
a pipe: :mod:`pipestatus.cli.textfile`): :func:`parse_config` takes the
decoded TOML, :func:`resolve_tokens` takes the environment as a mapping,
:func:`follow_targets` makes the client's targets (no request), and :func:`setup_problems`
names the accounts whose endpoint cannot be reached or whose token is refused. Every problem is a
:class:`ConfigError` whose message names the file and the key (``accounts.ci.endpoint``), or
the environment variable; no message ever holds a value that could be a token (a variable's
name that does not look like one is not shown: it may be a token pasted in its place), and no
``ConfigError`` carries a context or a frame local holding the file's text or a secret.

Secrets never live in the file: an account names the environment variables that hold them
(``token_env``; ``ak_env``, ``sk_env`` and ``security_token_env`` for ``auth = "aksk"``;
``password_env`` for ``auth = "iam"``), and a literal ``token`` key is refused.

(Over 500 lines: the checks of every key are private helpers of :func:`parse_config`, kept
beside the classes they build so that one file says everything the configuration may hold;
splitting them off would make every message's key path a cross-module contract.)
"""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

import attrs

from pipestatus.cli.convert import (
    ACCOUNT_NAME,
    BaseURL,
    IdText,
    Problem,
    WebURL,
    Word,
    structure,
)
from pipestatus.cli.credentials import SCHEMES, CredentialKeys, Secret, TokenKeys
from pipestatus.cli.example import EXAMPLE
from pipestatus.cli.serveconf import Notify, ServeKeys, parse_notify, parse_serve
from pipestatus.cli.textfile import Unreadable, read_small
from pipestatus.client import Client
from pipestatus.errors import AuthError, PipestatusError, TransportError
from pipestatus.model import Run, Scope, Target
from pipestatus.vendors import REGISTRY, VendorSpec

__all__ = [
    "EXAMPLE",
    "SCHEMES",
    "Account",
    "Config",
    "ConfigError",
    "Followed",
    "Pipeline",
    "Secret",
    "account_adapters",
    "account_scopes",
    "discover_targets",
    "follow_targets",
    "load_config",
    "parse_config",
    "resolve_tokens",
    "setup_problems",
]

Outcome: TypeAlias = Run | PipestatusError

_TOP_KEYS: Final = frozenset({"accounts", "pipelines", "serve", "notify"})
_USE_ENV_ADVICE: Final = (
    "a token must not be written in the file: put it in an environment variable "
    "and name that variable with token_env"
)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


@attrs.frozen(kw_only=True)
class AccountKeys:
    """The keys every account may have besides ``vendor``: where to send requests (an
    ``endpoint``, or a ``region`` of the vendor's), and which credentials scheme it uses."""

    endpoint: BaseURL | None = None
    region: str | None = None
    auth: str = "token"


@attrs.frozen(kw_only=True)
class Account:
    """One vendor account: its vendor's key, where its requests go (``endpoint`` or
    ``region``), its credentials' scheme and keys, and its options (an instance of the vendor
    spec's ``options`` class)."""

    name: str
    vendor: str
    endpoint: str | None
    options: Any
    region: str | None = None
    auth: str = "token"
    credentials: CredentialKeys | None = None
    #: ``pipelines = "*"`` (or a glob): follow every pipeline of the account whose name
    #: matches, found by listing them (for vendors that list: ``adapter.discovers``).
    pipelines: str | None = None

    @property
    def spec(self) -> VendorSpec[Any, Any]:
        return REGISTRY[self.vendor]

    @property
    def token_env(self) -> str | None:
        """The token's variable, for ``auth = "token"``."""
        keys = self.credentials
        return keys.token_env if isinstance(keys, TokenKeys) else None

    @property
    def where(self) -> str:
        """The key that says where requests go: ``endpoint`` or ``region``."""
        return "region" if self.region is not None else "endpoint"


@attrs.frozen(kw_only=True)
class PipelineKeys:
    """The keys every pipeline entry has besides its IDs: its account, a display name, and
    its web page (for the vendors whose answers carry none)."""

    account: str
    name: str | None = None
    url: WebURL | None = None
    tags: tuple[Word, ...] = ()


@attrs.frozen(kw_only=True)
class Pipeline:
    """One pipeline to follow: its account, its IDs in the vendor's order, a display name."""

    account: str
    ids: tuple[str, ...]
    name: str | None = None
    url: str | None = None  # the pipeline's web page, when the file gives one
    index: int = 0  # position in the file, for messages (pipelines[index])
    tags: tuple[str, ...] = ()  # the file's tags: `serve` groups and notifies by them

    @property
    def label(self) -> str:
        """The display name, or ``account/id[/id]``."""
        return self.name or f"{self.account}/{'/'.join(self.ids)}"


@attrs.frozen(kw_only=True)
class Config:
    """A validated configuration: accounts by name and pipelines in file order, and what
    ``pipestatus serve`` reads (``[serve]``, ``[notify]``; see :mod:`pipestatus.cli.serveconf`)."""

    source: str
    accounts: Mapping[str, Account]
    pipelines: tuple[Pipeline, ...]
    serve: ServeKeys = attrs.Factory(ServeKeys)
    notify: Notify = attrs.Factory(Notify)


def load_config(path: str | Path) -> Config:
    """Read and validate the TOML file at ``path`` (at most 1 MiB; a pipe within 5 s: see
    :mod:`pipestatus.cli.textfile`)."""
    # The decoded file is passed on, never held here: a token pasted in it must not sit in
    # the locals of a frame that a ConfigError's traceback keeps.
    return parse_config(_read_toml(path), source=str(path))


def _read_toml(path: str | Path) -> dict[str, Any]:
    """The decoded TOML of the file at ``path``, or ``ConfigError``."""
    problem: str | None = None
    text = ""
    try:
        text = read_small(path).decode("utf-8")
    except FileNotFoundError:
        problem = "no such file (write an example with `pipestatus init`)"
    except IsADirectoryError:
        problem = "is a directory, not a configuration file"
    except Unreadable as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"cannot read: {exc.strerror or type(exc).__name__}"
    except UnicodeDecodeError:
        problem = "not valid TOML: not UTF-8 text"
    if problem is None:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problem = f"not valid TOML: {exc}"
    # Raised after the except blocks, the text gone from this frame: no context (a decoder's
    # error holds the whole text), no local holding a token pasted in the file.
    del text
    raise ConfigError(f"{path}: {problem}")


def parse_config(data: Mapping[str, object], *, source: str) -> Config:
    """Validate decoded TOML; raise :class:`ConfigError` naming ``source`` and the key."""
    outcome: Config | str
    try:
        outcome = _parse(data, source)
    except Problem as problem:
        outcome = f"{source}: {problem.key}: {problem.problem}"
    if isinstance(outcome, str):
        del data  # a token pasted in the file must not sit in this frame's locals
        raise ConfigError(outcome)
    return outcome


def resolve_tokens(config: Config, environ: Mapping[str, str]) -> dict[str, Secret]:
    """Each account's credentials, read from the environment variables it names: a token
    (``auth = "token"``) or a credentials object (``"aksk"``, ``"iam"``).

    Only the accounts that some pipeline uses are read.
    """
    secrets = _read_secrets(config, environ)
    if isinstance(secrets, str):
        del environ  # raised from a frame that holds no secret, and with no context
        raise ConfigError(secrets)
    return secrets


def _read_secrets(config: Config, environ: Mapping[str, str]) -> dict[str, Secret] | str:
    """The secrets of :func:`resolve_tokens`, or the message of the first problem."""
    used = {pipeline.account for pipeline in config.pipelines}
    used |= {name for name, account in config.accounts.items() if account.pipelines is not None}
    secrets: dict[str, Secret] = {}
    for name, account in config.accounts.items():
        if name not in used or account.credentials is None:
            continue
        try:
            secrets[name] = account.credentials.read(environ)
        except Problem as problem:
            return f"{config.source}: accounts.{name}.{problem.key}: {problem.problem}"
    return secrets


@attrs.frozen(kw_only=True)
class Followed:
    """A pipeline the command follows: its names, its target, its account's home URL and the
    web page the file gives for it (``page``, or ``None``)."""

    label: str
    account: str
    vendor: str
    ids: tuple[tuple[str, str], ...]  # (key, value), in the vendor's order
    target: Target
    home: str
    page: str | None = None
    tags: tuple[str, ...] = ()
    #: Found by listing its account (``pipelines = "GLOB"``), not named in the file.
    found: bool = False


def account_adapters(
    client: Client, config: Config, tokens: Mapping[str, Secret]
) -> tuple[dict[str, Any], dict[str, str]]:
    """An adapter on ``client`` for each account whose credentials were read, and each one's
    home URL (no request is sent); a region the vendor does not know raises ``ConfigError``."""
    made = _account_adapters(client, config, tokens)
    if isinstance(made, str):
        del tokens  # raised from a frame that holds no secret, and with no context
        raise ConfigError(made)
    return made


def _account_adapters(
    client: Client, config: Config, tokens: Mapping[str, Secret]
) -> tuple[dict[str, Any], dict[str, str]] | str:
    """What :func:`account_adapters` returns, or the message of the first problem (returned:
    the refusals come from the credentials' own checks, whose frames hold the secrets)."""
    adapters: dict[str, Any] = {}
    homes: dict[str, str] = {}
    for name, account in config.accounts.items():
        if name not in tokens:
            continue
        spec = account.spec
        try:
            homes[name] = spec.base_url(account.endpoint, account.region)
        except ValueError as exc:
            return f"{config.source}: accounts.{name}.{account.where}: {exc}"
        try:
            auth = spec.make_auth(tokens[name], account.options, region=account.region)
            adapters[name] = client._connect(spec, homes[name], auth, account.options)
        except ValueError as exc:
            return f"{config.source}: accounts.{name}: {exc}"
    return adapters, homes


#: The adapters of :func:`account_adapters` and their home URLs, by account name.
Made: TypeAlias = tuple[dict[str, Any], dict[str, str]]


def follow_targets(
    client: Client, config: Config, tokens: Mapping[str, Secret], *, made: Made | None = None
) -> list[Followed]:
    """Each configured pipeline with its target, made by an adapter per account on ``client``
    (no request is sent), or by the adapters ``made`` (targets of one adapter only are equal:
    pass the same ones to :func:`discover_targets`). A region the vendor does not know, or IDs
    it refuses, raise ``ConfigError`` naming the key or the entry. (Pipelines an account
    follows by a glob are found by :func:`discover_targets`.)"""
    followed = _follow(config, made or account_adapters(client, config, tokens))
    if isinstance(followed, str):
        del tokens  # raised from a frame that holds no secret, and with no context
        raise ConfigError(followed)
    return followed


def _follow(config: Config, made: Made) -> list[Followed] | str:
    """What :func:`follow_targets` returns, or the message of the first problem."""
    adapters, homes = made
    out = []
    for pipeline in config.pipelines:
        account = config.accounts[pipeline.account]
        try:
            target = adapters[pipeline.account].target(*pipeline.ids)
        except ValueError as exc:
            return f"{config.source}: pipelines[{pipeline.index}]: {exc}"
        out.append(
            Followed(
                label=pipeline.label,
                account=pipeline.account,
                vendor=account.vendor,
                ids=tuple(zip(account.spec.id_names, target.ids, strict=True)),
                target=target,
                home=homes[pipeline.account],
                page=pipeline.url,
                tags=pipeline.tags,
            )
        )
    return out


async def discover_targets(
    client: Client,
    config: Config,
    tokens: Mapping[str, Secret],
    named: Sequence[Followed] = (),
    *,
    made: Made | None = None,
) -> list[Followed]:
    """The pipelines of every account with ``pipelines = "GLOB"``, found by listing them
    (one listing per account, all at once), in listing order; those already ``named`` in
    ``[[pipelines]]`` are left out. A pipeline's label is its name (``account/id`` when it has
    none, or when another pipeline has that label). An account whose listing fails raises
    ``ConfigError`` naming it. ``made``: the adapters ``named`` was made with."""
    adapters, homes = made or account_adapters(client, config, tokens)
    del tokens  # the secrets stay out of the frame a ConfigError below is raised from
    globbed = [
        (name, account)
        for name, account in config.accounts.items()
        if account.pipelines is not None and name in adapters
    ]

    async def listing(name: str, account: Account) -> list[Any] | PipestatusError:
        try:
            glob = account.pipelines
            return list(await adapters[name].pipelines(None if glob == "*" else glob))
        except PipestatusError as exc:
            return exc

    found = await asyncio.gather(*(listing(name, account) for name, account in globbed))
    known = {item.target for item in named}
    labels = {item.label for item in named}
    out: list[Followed] = []
    for (name, account), pipelines in zip(globbed, found, strict=True):
        if isinstance(pipelines, PipestatusError):
            raise ConfigError(
                f"{config.source}: accounts.{name}.pipelines: cannot list the pipelines of "
                f"{homes[name]}: {pipelines}"
            )
        for pipeline in pipelines:
            if pipeline.target in known:
                continue
            known.add(pipeline.target)
            label = pipeline.name or f"{name}/{pipeline.id}"
            if label in labels:
                label = f"{name}/{pipeline.id}"
            labels.add(label)
            out.append(
                Followed(
                    label=label,
                    account=name,
                    vendor=account.vendor,
                    ids=tuple(zip(account.spec.id_names, pipeline.target.ids, strict=True)),
                    target=pipeline.target,
                    home=homes[name],
                    found=True,
                )
            )
    return out


def account_scopes(
    client: Client,
    config: Config,
    tokens: Mapping[str, Secret],
    followed: Sequence[Followed] = (),
) -> dict[Scope, Followed]:
    """A ``Scope`` for each account with ``pipelines = "GLOB"`` (no request is sent), with a
    ``Followed`` that stands for the account (its name as the label), for a watch that lists
    the accounts again as it runs. Accounts of ``followed`` keep their adapters, so a scope's
    pipelines are the same targets as theirs."""
    adapters, homes = account_adapters(client, config, tokens)
    for item in followed:
        adapters[item.account] = item.target.source
        homes[item.account] = item.home
    out: dict[Scope, Followed] = {}
    for name, account in config.accounts.items():
        glob = account.pipelines
        if glob is None or name not in adapters:
            continue
        scope = adapters[name].scope(None if glob == "*" else glob)
        out[scope] = Followed(
            label=name, account=name, vendor=account.vendor, ids=(), target=scope, home=homes[name]
        )
    return out


def setup_problems(
    config: Config, followed: Sequence[Followed], outcomes: Mapping[Target, Outcome]
) -> list[str]:
    """One line per account that no pipeline could be read from because its endpoint cannot
    be reached or its credentials are refused: configuration errors, not pipeline errors."""
    by_account: dict[str, list[Outcome]] = {}
    homes: dict[str, str] = {}
    for item in followed:
        if item.target in outcomes:
            by_account.setdefault(item.account, []).append(outcomes[item.target])
            homes[item.account] = item.home
    lines = []
    for name, seen in by_account.items():
        account = config.accounts[name]
        where = f"{config.source}: accounts.{name}"
        if all(isinstance(o, TransportError) for o in seen):
            lines.append(f"{where}.{account.where}: cannot reach {homes[name]}: {seen[0]}")
        elif all(isinstance(o, AuthError) for o in seen) and account.credentials is not None:
            keys = account.credentials
            lines.append(f"{where}.{keys.refused_key}: {keys.refused()}: {seen[0]}")
    return lines


# --- the parts ------------------------------------------------------------------------------------


def _one_of(keys: frozenset[str] | Sequence[str]) -> str:
    return ", ".join(sorted(keys))


def _parse(data: Mapping[str, object], source: str) -> Config:
    if "token" in data:
        raise Problem("token", _USE_ENV_ADVICE)
    for key in data:
        if key not in _TOP_KEYS:
            raise Problem(key, f"unknown key (expected {_one_of(_TOP_KEYS)})")
    raw_accounts = data.get("accounts")
    if not isinstance(raw_accounts, dict) or not raw_accounts:
        raise Problem("accounts", "missing: add at least one [accounts.NAME] table")
    accounts = {name: _account(name, raw) for name, raw in raw_accounts.items()}
    raw_pipelines = data.get("pipelines")
    globbing = any(account.pipelines is not None for account in accounts.values())
    if globbing and raw_pipelines is None:
        raw_pipelines = []
    elif not isinstance(raw_pipelines, list) or not raw_pipelines:
        raise Problem(
            "pipelines",
            'missing: add at least one [[pipelines]] entry (or pipelines = "*" on an account)',
        )
    pipelines: list[Pipeline] = []
    seen_ids: dict[tuple[str, tuple[str, ...]], int] = {}
    seen_labels: dict[str, int] = {}
    for index, raw in enumerate(raw_pipelines):
        pipeline = _pipeline(index, raw, accounts)
        ident = (pipeline.account, pipeline.ids)
        if ident in seen_ids:
            first = seen_ids[ident]
            raise Problem(f"pipelines[{index}]", f"the same pipeline as pipelines[{first}]")
        if pipeline.label in seen_labels:
            raise Problem(
                f"pipelines[{index}].name",
                f"the same name as pipelines[{seen_labels[pipeline.label]}]",
            )
        seen_ids[ident] = index
        seen_labels[pipeline.label] = index
        pipelines.append(pipeline)
    serve = parse_serve(data["serve"]) if "serve" in data else ServeKeys()
    notify = parse_notify(data["notify"]) if "notify" in data else Notify()
    return Config(
        source=source,
        accounts=accounts,
        pipelines=tuple(pipelines),
        serve=serve,
        notify=notify,
    )


def _table(raw: object, where: str, form: str) -> dict[str, object]:
    """``raw`` as a table without a literal ``token`` key."""
    if not isinstance(raw, dict):
        raise Problem(where, f"must be a table: {form}")
    if "token" in raw:
        raise Problem(f"{where}.token", _USE_ENV_ADVICE)
    return raw


def _no_unknown_keys(
    raw: Mapping[str, object], allowed: frozenset[str], where: str, vendor: str
) -> None:
    for key in raw:
        if key not in allowed:
            raise Problem(
                f"{where}.{key}", f"unknown key for {vendor} (expected {_one_of(allowed)})"
            )


def _account(name: str, raw: object) -> Account:
    where = f"accounts.{name}"
    if not ACCOUNT_NAME.fullmatch(name):
        raise Problem(where, "account names use letters, digits, '.', '_' and '-' only")
    table = _table(raw, where, "[accounts.NAME]")
    vendor = table.get("vendor")
    if vendor is None:
        raise Problem(f"{where}.vendor", f"missing (one of {', '.join(REGISTRY)})")
    if not isinstance(vendor, str) or vendor not in REGISTRY:
        raise Problem(f"{where}.vendor", f"must be one of {', '.join(REGISTRY)}")
    spec = REGISTRY[vendor]
    option_keys = frozenset(field.name for field in attrs.fields(spec.options))
    scheme = _scheme(table, spec, where)
    scheme_keys = frozenset(field.name for field in attrs.fields(SCHEMES[scheme]))
    place = _place(table, spec, where)
    follows = _follows(table, spec, where)
    common = {place, *(("auth",) if "auth" in table else ())}
    allowed_extra = {"pipelines"} if follows is not None else set()
    allowed = frozenset(common) | scheme_keys | option_keys | {"vendor"} | allowed_extra
    _no_other_scheme(table, allowed, spec, scheme, where)
    _no_unknown_keys(table, allowed, where, vendor)
    keys = structure({k: v for k, v in table.items() if k in common}, AccountKeys, where)
    credentials = structure(
        {k: v for k, v in table.items() if k in scheme_keys}, SCHEMES[scheme], where
    )
    given = {k: v for k, v in table.items() if k in option_keys}
    options = structure(given, spec.options, where)
    return Account(
        name=name,
        vendor=vendor,
        endpoint=keys.endpoint,
        region=keys.region,
        auth=scheme,
        credentials=credentials,
        options=options,
        pipelines=follows,
    )


def _follows(table: Mapping[str, object], spec: VendorSpec[Any, Any], where: str) -> str | None:
    """The account's ``pipelines = "GLOB"`` (``"*"``: all), for a vendor that lists them."""
    if "pipelines" not in table:
        return None
    if not spec.adapter.discovers:
        raise Problem(
            f"{where}.pipelines",
            f"{spec.key} cannot list its pipelines: name them in [[pipelines]] entries",
        )
    return structure(table["pipelines"], str, f"{where}.pipelines")


def _scheme(table: Mapping[str, object], spec: VendorSpec[Any, Any], where: str) -> str:
    """The account's ``auth`` scheme, one of its vendor's (default ``"token"``)."""
    scheme = table.get("auth", "token")
    if not isinstance(scheme, str) or scheme not in spec.auth_schemes or scheme not in SCHEMES:
        known = ", ".join(f'"{s}"' for s in spec.auth_schemes)
        raise Problem(f"{where}.auth", f"must be one of {known} for {spec.key}")
    return scheme


def _place(table: Mapping[str, object], spec: VendorSpec[Any, Any], where: str) -> str:
    """Which key says where requests go: ``endpoint``, or ``region`` for a vendor that has
    regions; exactly one of them."""
    if spec.regions is None or "region" not in table:
        if "endpoint" not in table:
            hint = " (or give region)" if spec.regions is not None else ""
            raise Problem(f"{where}.endpoint", f"missing{hint}")
        return "endpoint"
    if "endpoint" in table:
        raise Problem(f"{where}.region", "give endpoint or region, not both")
    return "region"


def _no_other_scheme(
    table: Mapping[str, object],
    allowed: frozenset[str],
    spec: VendorSpec[Any, Any],
    scheme: str,
    where: str,
) -> None:
    """A key of another ``auth`` scheme of the vendor says which scheme it belongs to."""
    for key in table:
        if key in allowed:
            continue
        for other in spec.auth_schemes:
            if other in SCHEMES and key in {f.name for f in attrs.fields(SCHEMES[other])}:
                raise Problem(
                    f"{where}.{key}",
                    f'belongs to auth = "{other}" (this account has auth = "{scheme}")',
                )


def _pipeline(index: int, raw: object, accounts: Mapping[str, Account]) -> Pipeline:
    where = f"pipelines[{index}]"
    table = _table(raw, where, "[[pipelines]]")
    if "account" not in table:
        raise Problem(f"{where}.account", "missing")
    account_name = structure(table["account"], str, f"{where}.account")
    account = accounts.get(account_name)
    if account is None:
        raise Problem(
            f"{where}.account", f"no account of that name (accounts: {_one_of(tuple(accounts))})"
        )
    spec = account.spec
    common = frozenset(field.name for field in attrs.fields(PipelineKeys))
    _no_unknown_keys(table, common | set(spec.id_names), where, account.vendor)
    keys = structure({k: v for k, v in table.items() if k in common}, PipelineKeys, where)
    ids: list[str] = []
    for param in spec.ids:
        if param.name not in table:
            raise Problem(f"{where}.{param.name}", "missing")
        text = structure(table[param.name], IdText, f"{where}.{param.name}")
        try:
            ids.append(param.check(text, param.name))
        except ValueError as exc:  # its message names the key: "repository_id must be ..."
            raise Problem(where, str(exc)) from None
    return Pipeline(
        account=keys.account,
        ids=tuple(ids),
        name=keys.name,
        url=keys.url,
        index=index,
        tags=keys.tags,
    )
