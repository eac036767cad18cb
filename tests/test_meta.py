"""Meta tests: the package keeps the promises of DESIGN.md and STYLE.md as it grows."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

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
VENDORS = ("codearts_repo", "codearts_pipeline", "yunxiao")
#: The only modules allowed to import aiohttp: the transport, the test server, the CLI (serves
#: the CCTray feed).
AIOHTTP_ALLOWED = {"http.py", "testing", "cli"}


def test_public_names_are_those_of_the_design() -> None:
    """``pipestatus.__all__`` is exactly DESIGN.md's import line, plus ``__version__``."""
    assert sorted(pipestatus.__all__) == sorted(
        ["Client", "Status", "Run", "Stage", "Job", "Target", "Change", "__version__"]
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


def test_vendor_modules_have_their_parts() -> None:
    """Each vendor module has a VENDOR key, a STATUS table, parse functions and fixtures."""
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
