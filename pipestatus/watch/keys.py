"""Targets' keys: what names a target in a store, a stream and among replicas. Pure.

A target's **key** is a JSON array ``[vendor, base_url, scope, ids]``, where ``scope`` holds the
account options whose values are strings (the project or organization a pipeline lives in;
never a credential: adapters keep those in their auth objects). It stays the same across
processes and restarts, names the target for people, and is enough to rebuild a :class:`Target`
on the consumer's side (:func:`target_of`, whose source is a :class:`RemoteSource`: a
description of the account, not an adapter that can poll). The key without the IDs is the
account's (:func:`account_key`): the v5 targets of one project share it.
"""

from __future__ import annotations

from typing import Any

import attrs

from pipestatus._sansio import origin_of
from pipestatus.model import Target
from pipestatus.watch.codec import CodecError, dumps, loads

__all__ = ["RemoteSource", "account_key", "target_key", "target_of"]


@attrs.frozen(kw_only=True)
class RemoteSource:
    """The account of a target rebuilt from its key (a stream consumer has no adapters): it
    describes the vendor, base URL and scope, and cannot poll."""

    vendor: str
    base_url: str
    scope: tuple[tuple[str, str], ...] = ()
    batches: bool = False

    @property
    def origin(self) -> str:
        return origin_of(self.base_url)


def _scope(source: object) -> dict[str, str]:
    options = getattr(source, "options", None)
    if isinstance(source, RemoteSource):
        return dict(source.scope)
    if options is None or not attrs.has(type(options)):
        return {}
    values = attrs.asdict(options, recurse=False)
    return {name: value for name, value in sorted(values.items()) if isinstance(value, str)}


def _account(source: object) -> list[Any]:
    vendor = getattr(source, "vendor", "")
    base_url = getattr(source, "base_url", None) or getattr(source, "origin", "")
    return [vendor, base_url, _scope(source)]


def target_key(target: Target) -> str:
    """The target's stable key: ``[vendor, base_url, scope, ids]`` as compact JSON."""
    return dumps([*_account(target.source), list(target.ids)])


def account_key(target: Target) -> str:
    """The key of the target's account (its key without the IDs): targets of one v5 project
    share it, so replicas keep them on one member, in one batch."""
    return dumps(_account(target.source))


def target_of(key: str) -> Target:
    """A :class:`Target` rebuilt from its key, its source a :class:`RemoteSource`."""
    data = loads(key)
    if not (isinstance(data, list) and len(data) == 4):
        raise CodecError("a target key is [vendor, base_url, scope, ids]")
    vendor, base_url, scope, ids = data
    if not (isinstance(vendor, str) and isinstance(base_url, str) and isinstance(scope, dict)):
        raise CodecError("a target key is [vendor, base_url, scope, ids]")
    if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise CodecError("a target key's IDs are strings")
    pairs = tuple((str(k), str(v)) for k, v in sorted(scope.items()))
    return Target(
        source=RemoteSource(vendor=vendor, base_url=base_url, scope=pairs), ids=tuple(ids)
    )
