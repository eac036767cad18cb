"""The vendors: one module each, and the registry that lists them.

Each ``pipestatus/vendors/<key>.py`` owns everything about its vendor: its wire schema and
converter, its ``STATUS`` table, its pure ``parse_*`` functions, its adapter, and its ``SPEC`` (a
:class:`~pipestatus.vendors._spec.VendorSpec`: key, display name, auth header and schemes, the IDs
of a pipeline and their validators, the error-body decoder, the account options that are its
configuration keys, and its demo fleet). It also gives ``Client`` its typed factory through a
``Factory`` class.

:data:`REGISTRY` lists the specs, and :class:`Factories` gathers the factories; those two lines
are the only place a vendor is listed. The client, the configuration loader, the command, the
simulated server and the meta tests read the registry and name no vendor.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pipestatus.vendors import codearts_pipeline, codearts_repo, yunxiao
from pipestatus.vendors._spec import VendorSpec

__all__ = ["REGISTRY", "Factories", "Registry", "VendorSpec"]


class Registry(Mapping[str, VendorSpec[Any, Any]]):
    """The vendor specs by key, in a stable order."""

    __slots__ = ("_specs",)

    def __init__(self, *specs: VendorSpec[Any, Any]) -> None:
        self._specs = {spec.key: spec for spec in specs}
        if len(self._specs) != len(specs):
            raise ValueError("two vendor specs share a key")

    def __getitem__(self, key: str) -> VendorSpec[Any, Any]:
        return self._specs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"Registry({', '.join(self._specs)})"


#: Every vendor pipestatus speaks, by key.
REGISTRY: Final = Registry(codearts_repo.SPEC, codearts_pipeline.SPEC, yunxiao.SPEC)


class Factories(codearts_repo.Factory, codearts_pipeline.Factory, yunxiao.Factory):
    """The typed factory of every vendor (``client.codearts_repo(...)`` and the others)."""

    __slots__ = ()
