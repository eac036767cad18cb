"""The demo fleet, read from the vendor registry: the pipelines ``pipestatus demo`` follows,
and the configuration ``pipestatus init --demo`` writes for the simulated server.

For every registered vendor: one account made from its ``spec.demo.options`` and its
``spec.demo.credentials`` (the server's token, or credentials the simulated server knows: one
Huawei account signs with AK/SK, the other uses IAM tokens), and the pipelines
``spec.demo.ids(1)`` ... ``spec.demo.ids(n)``, which :func:`pipestatus.testing.make_fleet`
serves.
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import urlsplit

from pipestatus.cli.config import Followed
from pipestatus.client import Client
from pipestatus.vendors import REGISTRY

__all__ = ["DEMO_TOKEN", "DEMO_TOKEN_ENV", "demo_config", "demo_fleet"]

#: The variable the demo configuration names, and the token it tells the server to take.
DEMO_TOKEN_ENV: Final = "PIPESTATUS_DEMO_TOKEN"  # noqa: S105 - a variable's name
DEMO_TOKEN: Final = "demo-token"  # noqa: S105 - the token of a simulated server on loopback


def demo_fleet(client: Client, url: str, token: str, size: int) -> list[Followed]:
    """The demo fleet at ``url``: ``size`` pipelines of every registered vendor, in registry
    order, each account made from its spec's demo options and credentials (no request is
    sent)."""
    fleet = []
    for spec in REGISTRY.values():
        options = spec.options(**spec.demo.options)
        credentials = spec.demo.credentials
        secret = token if credentials is None else credentials(url, token)
        adapter = client._connect(spec, url, spec.make_auth(secret, options), options)
        for n in range(1, size + 1):
            target = adapter.target(*spec.demo.ids(n))
            fleet.append(
                Followed(
                    label="/".join(target.ids),
                    account=spec.key,
                    vendor=spec.key,
                    ids=tuple(zip(spec.id_names, target.ids, strict=True)),
                    target=target,
                    home=url,
                )
            )
    return fleet


def _toml(value: object) -> str:
    """A TOML value for a string, a bool or an integer (a JSON string is a TOML string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def demo_config(url: str, size: int) -> str:
    """A configuration of the demo fleet at ``url`` (``size`` pipelines per vendor), with the
    commands that start the simulated server for it in its head."""
    port = urlsplit(url).port or 80
    parts = [
        f"""\
# pipestatus configuration for the simulated vendor server of pipestatus.testing:
# {size} pipeline(s) of each vendor's demo fleet. Start the server, then point pipestatus here:
#
#   python -m pipestatus.testing --fleet --port {port} --token {DEMO_TOKEN} &
#   export {DEMO_TOKEN_ENV}={DEMO_TOKEN}
#   pipestatus status -c THIS_FILE         (or watch --live, wait NAME, view NAME)
"""
    ]
    for spec in REGISTRY.values():
        lines = [f"\n# {spec.name}", f"[accounts.{spec.key}]", f'vendor = "{spec.key}"']
        lines += [f"endpoint = {_toml(url)}", f'token_env = "{DEMO_TOKEN_ENV}"']
        lines += [f"{key} = {_toml(value)}" for key, value in spec.demo.options.items()]
        parts.append("\n".join(lines) + "\n")
    for spec in REGISTRY.values():
        for n in range(1, size + 1):
            ids = spec.demo.ids(n)
            lines = ["\n[[pipelines]]", f'account = "{spec.key}"']
            lines.append(f"name = {_toml(f'{spec.key}-{n}')}")
            lines += [
                f"{name} = {_toml(value)}" for name, value in zip(spec.id_names, ids, strict=True)
            ]
            parts.append("\n".join(lines) + "\n")
    return "".join(parts)
