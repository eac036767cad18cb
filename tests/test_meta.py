"""Meta tests: the package keeps the promises of DESIGN.md and STYLE.md as it grows."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import pkgutil
import re
from pathlib import Path

import attrs
import pytest

import pipestatus
import pipestatus.errors
from pipestatus import Status
from pipestatus.status import StatusTable
from pipestatus.testing.dialects import DIALECTS
from pipestatus.testing.dialects._base import Dialect
from pipestatus.vendors import REGISTRY

ROOT = Path(__file__).parent.parent
#: The sources in this checkout (the tests import the installed copy of the same files).
PACKAGE = ROOT / "pipestatus"
FIXTURES = ROOT / "tests" / "fixtures"
VENDORS = tuple(REGISTRY)
#: The only modules allowed to import aiohttp: the transport, the test server, the CLI (serves
#: the CCTray feed) and the service.
AIOHTTP_ALLOWED = {"http.py", "testing", "cli", "serve"}


def test_public_names_are_those_of_the_design() -> None:
    """``pipestatus.__all__`` is exactly DESIGN.md's import line and its v0.2 ``Pipeline``,
    plus ``__version__``."""
    assert sorted(pipestatus.__all__) == sorted(
        ["Client", "Status", "Run", "Stage", "Job", "Target", "Change", "Pipeline", "__version__"]
    )
    for name in pipestatus.__all__:
        assert hasattr(pipestatus, name)


def test_error_names_of_the_design_exist() -> None:
    """Every error DESIGN.md names is importable from ``pipestatus.errors``."""
    names = [
        "PipestatusError",
        "TransportError",
        "RequestTimeout",
        "APIError",
        "AuthError",
        "ForbiddenError",
        "NotFoundError",
        "RateLimitedError",
        "ServerError",
        "ResponseError",
    ]
    for name in names:
        assert issubclass(getattr(pipestatus.errors, name), pipestatus.errors.PipestatusError)


def test_error_classes_match_the_drawn_tree() -> None:
    """The tree drawn in the errors module docstring is the real class hierarchy."""
    doc = pipestatus.errors.__doc__ or ""
    drawn: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        match = re.match(r"^(\s*(?:[│ ]\s*)*(?:[├└]── )?)(\w+Error|\w+Timeout)\b", line)
        if not match:
            continue
        depth, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[name] = stack[-1][1] if stack else ""
        stack.append((depth, name))
    classes = {
        name: cls
        for name, cls in vars(pipestatus.errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, Exception)
        and cls.__module__ == "pipestatus.errors"
    }
    assert set(drawn) == set(classes)
    for name, parent in drawn.items():
        base = classes[name].__bases__[0]
        assert (base.__name__ if parent else "Exception") == (parent or "Exception"), name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.name not in AIOHTTP_ALLOWED and p.relative_to(PACKAGE).parts[0] not in AIOHTTP_ALLOWED
    ),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_transport_imports_aiohttp(path: Path) -> None:
    """Nothing outside http.py, testing.py and cli.py imports aiohttp (or yarl/multidict)."""
    assert not _imports(path) & {"aiohttp", "yarl", "multidict"}


#: The only packages allowed to import rich: the command (and the service, once it exists).
RICH_ALLOWED = {"cli", "serve"}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in RICH_ALLOWED),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_command_imports_rich(path: Path) -> None:
    """No module outside pipestatus/cli/ (and a future pipestatus/serve/) imports rich."""
    assert "rich" not in _imports(path)


def test_the_rich_scan_finds_an_import() -> None:
    """The scan behind the test above sees ``import rich`` and ``from rich.x import y``."""
    cli = PACKAGE / "cli" / "render.py"
    assert "rich" in _imports(cli)


def test_vendor_modules_have_their_parts() -> None:
    """Each vendor module has a VENDOR key, a STATUS table, parse functions and fixtures, and
    the registry lists exactly the vendor modules there are."""
    modules = {info.name for info in pkgutil.iter_modules([str(PACKAGE / "vendors")])}
    assert {m for m in modules if not m.startswith("_")} == set(VENDORS)
    for vendor in VENDORS:
        module = importlib.import_module(f"pipestatus.vendors.{vendor}")
        assert vendor == module.VENDOR
        assert isinstance(module.STATUS, StatusTable)
        assert any(name.startswith("parse_") for name in module.__all__)
        fixtures = list((FIXTURES / vendor).glob("*-200.json"))
        assert fixtures, f"no 200 fixtures for {vendor}"
        assert list((FIXTURES / vendor).glob("error-*.json")), f"no error fixtures for {vendor}"


def test_every_vendor_has_a_simulator_dialect() -> None:
    """Each registered vendor has its module under testing/dialects/, whose DIALECT is of its
    key, and the folder holds no dialect of an unregistered vendor."""
    folder = PACKAGE / "testing" / "dialects"
    modules = {info.name for info in pkgutil.iter_modules([str(folder)])}
    assert {m for m in modules if not m.startswith("_")} == set(REGISTRY)
    for key in REGISTRY:
        dialect = importlib.import_module(f"pipestatus.testing.dialects.{key}").DIALECT
        assert issubclass(dialect, Dialect)
        assert dialect.key == key
        assert DIALECTS[key] is dialect


@pytest.mark.parametrize("vendor", VENDORS)
def test_status_tables_reach_every_status_they_can(vendor: str) -> None:
    """Every vendor table maps onto the seven statuses only, and covers its documented words."""
    table = importlib.import_module(f"pipestatus.vendors.{vendor}").STATUS
    assert set(table.words.values()) <= set(Status)
    documented = {
        "codearts_repo": {s.value for s in Status},
        "codearts_pipeline": {
            "COMPLETED", "RUNNING", "FAILED", "CANCELED", "PAUSED", "SUSPEND", "IGNORED",
            "INIT", "QUEUED", "SKIPPED", "ASYNC_RUNNING", "ASYNC_FAILED", "UNSELECTED",
            "REDISPATCH",
        },
        "yunxiao": {
            "FAIL", "SUCCESS", "RUNNING", "CANCELED", "WAITING", "INIT", "SKIPPED", "TIMEOUT",
            "CANCELLING", "FINISH", "UNKOWN", "SKIP",
        },
    }[vendor]  # fmt: skip
    assert set(table.words) == documented


def test_readme_status_tables_list_every_word() -> None:
    """The README's status tables name every word of every vendor table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for vendor in VENDORS:
        table = importlib.import_module(f"pipestatus.vendors.{vendor}").STATUS
        for word in table.words:
            assert f"`{word}`" in readme, (vendor, word)


def test_package_ships_py_typed() -> None:
    """The installed package carries the py.typed marker."""
    assert (Path(pipestatus.__file__).parent / "py.typed").exists()


def _vendor_words() -> re.Pattern[str]:
    """Every registered vendor's key and auth header, as a whole word (``-`` and ``_`` are
    part of a word), in any case."""
    from pipestatus.vendors import REGISTRY

    words = {spec.key for spec in REGISTRY.values()} | {spec.header for spec in REGISTRY.values()}
    alternatives = "|".join(re.escape(word) for word in sorted(words))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def _strings_and_names(source: str) -> list[str]:
    """Every string literal (docstrings and f-string parts included) and every identifier of
    ``source``: names, attributes, definitions, arguments, keywords and imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        match node:
            case ast.Constant(value=str() as text):
                found.append(text)
            case ast.Name(id=name) | ast.Attribute(attr=name) | ast.arg(arg=name):
                found.append(name)
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name):
                found.append(name)
            case ast.ClassDef(name=name):
                found.append(name)
            case ast.keyword(arg=str() as name):
                found.append(name)
            case ast.alias(name=name, asname=asname):
                found.extend(part for part in (name, asname) if part)
            case ast.ImportFrom(module=str() as module):
                found.append(module)
    return found


def _vendors_named(source: str) -> set[str]:
    pattern = _vendor_words()
    return {m.group() for text in _strings_and_names(source) for m in pattern.finditer(text)}


def _outside_the_vendors(path: Path) -> bool:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] != "vendors" and parts[:2] != ("testing", "dialects")


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if _outside_the_vendors(p)),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_vendor_modules_name_a_vendor(path: Path) -> None:
    """No module outside pipestatus/vendors/ and pipestatus/testing/dialects/ names a vendor
    key or a vendor's auth header, in a string literal or an identifier: the client, the
    command, the configuration, the simulator's core and the watch read the registry."""
    assert _vendors_named(path.read_text(encoding="utf-8")) == set()


def test_the_vendor_scan_finds_keys_and_headers() -> None:
    """The scan behind the test above finds a key in an identifier or an f-string and a
    header in any case, and ignores a longer word that contains a key."""
    from pipestatus.vendors import REGISTRY

    spec = next(iter(REGISTRY.values()))
    assert _vendors_named(f"client.{spec.key}(url)") == {spec.key}
    assert _vendors_named(f"x = f'{{a}}/{spec.key}'") == {spec.key}
    assert _vendors_named(f"h = {spec.header.upper()!r}") == {spec.header.upper()}
    assert _vendors_named(f"{spec.key}_extra = 1\nx = 'my-{spec.key}'") == set()


@pytest.mark.parametrize("key", list(REGISTRY))
def test_every_registered_vendor_is_complete(key: str) -> None:
    """A registered vendor has fixtures, a status table that maps onto the seven statuses and
    reaches every terminal status but timedout (which v5 lacks), a simulator dialect, account
    options that are its configuration keys, demo IDs its own validators accept, a typed
    factory on Client, and README rows: its key in the status tables, every word of its table,
    and a row of the configuration-keys table."""
    from pipestatus import Client
    from pipestatus.vendors import Factories

    spec = REGISTRY[key]
    assert list((FIXTURES / key).glob("*-200.json")), f"no 200 fixtures for {key}"
    assert list((FIXTURES / key).glob("error-*.json")), f"no error fixtures for {key}"
    assert isinstance(spec.status, StatusTable)
    reached = set(spec.status.words.values())
    assert reached <= set(Status)
    assert {Status.SUCCESS, Status.FAILED, Status.CANCELED, Status.RUNNING} <= reached
    assert importlib.util.find_spec(f"pipestatus.testing.dialects.{key}") is not None
    assert attrs.has(spec.options)
    spec.options(**spec.demo.options)  # the demo account's options are valid ones
    for n in (1, 2):
        ids = spec.demo.ids(n)
        assert [param.check(value, param.name) for param, value in zip(spec.ids, ids, strict=True)]
    assert callable(getattr(Factories, key))
    assert callable(getattr(Client, key))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `{key}` |" in readme
    for word in spec.status.words:
        assert f"`{word}`" in readme, word
    assert spec.name
    assert spec.header
    assert spec.auth_schemes
    assert spec.example_account
