"""The simulator's dialects: one module per registered vendor, and the simulator's registration.

``pipestatus/testing/dialects/<key>.py`` speaks the API of the vendor registered under ``key``
in :data:`pipestatus.vendors.REGISTRY`: its routes, payloads, error bodies, status-word tables
and auth check (a :class:`~pipestatus.testing.dialects._base.Dialect` subclass named by the
module's ``DIALECT``), and the typed ``add_*_pipeline`` method it gives ``VendorServer``
(its ``Pipelines`` mixin).

:data:`DIALECTS` is read from the registry: every registered vendor must have its module here,
or importing the simulator fails naming the missing one. :class:`Pipelines` gathers the
mixins; that line and the imports above it are the only place the simulator lists vendors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Final

from pipestatus.testing.dialects import codearts_pipeline, codearts_repo, yunxiao
from pipestatus.testing.dialects._base import Dialect
from pipestatus.testing.dialects.codearts_pipeline import V5_RUN_STATUS, V5_STAGE_STATUS
from pipestatus.testing.dialects.codearts_repo import V4_STATUS
from pipestatus.testing.dialects.yunxiao import YUNXIAO_STATUS
from pipestatus.vendors import REGISTRY

__all__ = [
    "DIALECTS",
    "ERROR_BODIES",
    "V4_STATUS",
    "V5_RUN_STATUS",
    "V5_STAGE_STATUS",
    "YUNXIAO_STATUS",
    "Dialect",
    "Pipelines",
    "dialect_for",
]


def dialect_for(key: str) -> type[Dialect]:
    """The dialect of the vendor registered as ``key``: ``pipestatus.testing.dialects.<key>``."""
    try:
        module = importlib.import_module(f"{__name__}.{key}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{key}":
            raise
        raise LookupError(
            f"the vendor {key!r} has no simulator dialect: add {__name__}.{key}"
        ) from None
    dialect = getattr(module, "DIALECT", None)
    if not (isinstance(dialect, type) and issubclass(dialect, Dialect)) or dialect.key != key:
        raise LookupError(f"{module.__name__}.DIALECT is not the Dialect of {key!r}")
    return dialect


#: The dialect class of every registered vendor, by key, in the registry's order.
DIALECTS: Final[Mapping[str, type[Dialect]]] = {key: dialect_for(key) for key in REGISTRY}

#: Error bodies by vendor key and status; those the vendor documentation does not give are
#: plausible inventions in each vendor's shape (marked in each dialect).
ERROR_BODIES: Final[Mapping[str, Mapping[int, Mapping[str, str]]]] = {
    key: dialect.error_bodies for key, dialect in DIALECTS.items()
}


class Pipelines(codearts_repo.Pipelines, codearts_pipeline.Pipelines, yunxiao.Pipelines):
    """The typed ``add_*_pipeline`` method of every dialect, for ``VendorServer``."""

    __slots__ = ()
