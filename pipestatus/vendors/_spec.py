"""What one vendor module declares about itself: its entry in the registry.

Every fact about a vendor that some other part of pipestatus needs lives in its
:class:`VendorSpec`: the key and display name, the header that carries a token and the auth
schemes a configuration may name, the IDs that name one of its pipelines (with their
validators), the decoder of its error bodies, its status table, its adapter class and the
configuration keys of an account (an attrs class of options), its service endpoints by region
(:class:`Regions`) and how its credentials bind to an adapter, and its share of the demo fleet.
The client's factories, the configuration loader, the command, the simulated server and the meta
tests read it; none of them names a vendor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from pipestatus._sansio import ErrorDecoder, RetryHint
from pipestatus.auth import Auth, token_auth
from pipestatus.status import StatusTable

if TYPE_CHECKING:
    from pipestatus.vendors._base import Adapter

__all__ = ["Demo", "IdParam", "OptionError", "Regions", "VendorSpec", "checked"]

A = TypeVar("A", bound="Adapter[Any]")
O = TypeVar("O")  # noqa: E741 - the options class, as in Generic[A, O]


class OptionError(ValueError):
    """An account option its vendor refuses; ``option`` names it, ``problem`` says why (the
    message never repeats the value: it may be a secret pasted in the wrong place)."""

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option} {problem}")


def checked(
    check: Callable[[object, str], object], *, optional: bool = False
) -> Callable[[object, attrs.Attribute[Any], object], None]:
    """An attrs validator running an ID check (``check(value, name)``, raising ``ValueError``
    that starts with ``name``) and raising :class:`OptionError` for the option it guards."""

    def validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if optional and value is None:
            return
        try:
            check(value, attribute.name)
        except ValueError as exc:
            problem = str(exc).removeprefix(attribute.name).lstrip(" :")
            raise OptionError(attribute.name, problem) from None

    return validate


@attrs.frozen(kw_only=True)
class IdParam:
    """One of the IDs that name a pipeline of the vendor, in the vendor's order."""

    #: The keyword and configuration key (``repository_id``).
    name: str
    #: ``check(value, name)`` -> the ID as ``str``, or ``ValueError`` naming ``name``.
    check: Callable[[object, str], str] = attrs.field(repr=False)
    #: One line for help texts and the example configuration.
    help: str = ""


@attrs.frozen(kw_only=True)
class Regions:
    """A service's endpoints by region, as the vendor's SDK lists them, with the SDK's
    environment override for one region: ``{env_prefix}_{service}_{REGION}`` (the region
    upper-cased, ``-`` as ``_``), whose value (the first of a comma-separated list) wins."""

    #: The service's name in the override (``CODEARTSREPO``).
    service: str
    #: Region ID -> base URL.
    endpoints: Mapping[str, str] = attrs.field(repr=False)
    #: The override's prefix.
    env_prefix: str = "HUAWEICLOUD_SDK_REGION"

    def env_name(self, region: str) -> str:
        """The variable that overrides ``region``'s endpoint."""
        return f"{self.env_prefix}_{self.service}_{region.upper().replace('-', '_')}"

    def endpoint(self, region: object, environ: Mapping[str, str] | None = None) -> str:
        """The base URL of ``region``: its override when set, else the table's; an unknown
        region is a ``ValueError`` naming the known ones."""
        if not isinstance(region, str) or not region.strip():
            raise ValueError("region must be a non-empty string such as 'cn-north-4'")
        region = region.strip()
        override = (os.environ if environ is None else environ).get(self.env_name(region), "")
        first = override.split(",")[0].strip()
        if first:
            return first
        found = self.endpoints.get(region)
        if found is None:
            raise ValueError(
                f"unknown region {region!r}; known regions: {', '.join(self.endpoints)} "
                f"(or set {self.env_name(region)})"
            )
        return found


#: How an account's credentials become an adapter's auth: ``(credentials, options, region)``
#: -> ``Auth``; ``credentials`` is a token (a string or an async provider) or a credentials
#: object the vendor accepts.
Binder = Callable[[object, Any, "str | None"], Auth]


@attrs.frozen(kw_only=True)
class Demo:
    """The vendor's share of the demo fleet, as served by ``pipestatus.testing``."""

    #: The demo account's options (keyword arguments of the vendor's ``options`` class).
    options: Mapping[str, Any]
    #: The IDs of the n-th (1-based) demo pipeline, in the order of the spec's ``ids``.
    ids: Callable[[int], tuple[str, ...]] = attrs.field(repr=False)
    #: The demo account's credentials, ``(server URL, server token) ->`` what
    #: :meth:`VendorSpec.make_auth` takes; ``None``: the server's token itself.
    credentials: Callable[[str, str], object] | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class VendorSpec(Generic[A, O]):
    """One vendor, as the rest of pipestatus knows it; see the module docstring."""

    #: The registry key, ``Run.vendor`` and the configuration's ``vendor = "..."``.
    key: str
    #: For people: "Huawei Cloud CodeArts Repo (API v4)".
    name: str
    #: The header that carries a token (``token=`` on the factory, ``token_env`` in a file).
    header: str
    #: The ``auth = "..."`` schemes an account of this vendor may name in a configuration.
    auth_schemes: tuple[str, ...]
    #: The IDs that name one pipeline (``adapter.target(*ids)``), in order.
    ids: tuple[IdParam, ...]
    #: Error body -> ``(code, message)``.
    decode_error: ErrorDecoder = attrs.field(repr=False)
    #: A 429's body -> seconds to wait, for a vendor that says so there rather than in
    #: ``Retry-After`` (which wins when both are given); ``None``: the header only.
    retry_hint: RetryHint | None = attrs.field(default=None, repr=False)
    #: The vendor's status words.
    status: StatusTable = attrs.field(repr=False)
    #: The adapter class: ``adapter(sender, endpoint, options, conditional=...)``.
    adapter: type[A] = attrs.field(repr=False)
    #: The account options: an attrs class whose fields are the configuration keys of an
    #: account besides ``vendor``, ``endpoint`` and the credentials.
    options: type[O] = attrs.field(repr=False)
    #: The vendor's share of the demo fleet.
    demo: Demo = attrs.field(repr=False)
    #: The service's endpoints by region (``region=`` on the factory), if it has regions.
    regions: Regions | None = attrs.field(default=None, repr=False)
    #: How credentials bind to an adapter; ``None``: only tokens, sent in ``header``.
    binder: Binder | None = attrs.field(default=None, repr=False)
    #: For ``pipestatus init``: a commented TOML ``[accounts.NAME]`` table of this vendor...
    example_account: str = attrs.field(default="", repr=False)
    #: ...and one ``[[pipelines]]`` entry that uses it.
    example_pipeline: str = attrs.field(default="", repr=False)

    @property
    def id_names(self) -> tuple[str, ...]:
        return tuple(param.name for param in self.ids)

    def base_url(self, base_url: str | None, region: str | None) -> str:
        """Where an account's requests go: ``base_url``, or ``region``'s endpoint (exactly
        one of them); ``ValueError`` otherwise, or for a region the vendor does not know."""
        if (base_url is None) == (region is None):
            if self.regions is None:
                raise ValueError(f"{self.key}: give the base URL")
            raise ValueError(f"{self.key}: give exactly one of base_url and region")
        if region is None:
            assert base_url is not None
            return base_url
        if self.regions is None:
            raise ValueError(f"{self.key} has no regions: give the base URL")
        return self.regions.endpoint(region)

    def make_auth(self, credentials: object, options: O, *, region: str | None = None) -> Auth:
        """The auth of one adapter: a token (a string or an async provider) in ``header``, or
        a credentials object bound by the vendor's ``binder``."""
        if self.binder is not None:
            return self.binder(credentials, options, region)
        if isinstance(credentials, str) or callable(credentials):
            return token_auth(self.header, credentials)
        raise TypeError(f"{self.key} takes a token, not {type(credentials).__name__}")
