"""The commented configuration ``pipestatus init`` writes: one account and one pipeline of
every registered vendor, as each spec writes them (its ``example_account`` and
``example_pipeline``)."""

from __future__ import annotations

from typing import Final

from pipestatus.vendors import REGISTRY

__all__ = ["EXAMPLE", "example"]

_EXAMPLE_HEAD: Final = """\
# pipestatus configuration: the vendor accounts to read and the pipelines to follow.
#
#   pipestatus status                   one table (--json: one JSON document)
#   pipestatus view NAME                one run as a tree of stages and jobs
#   pipestatus wait NAME                wait for the run to finish: exit 0, 3 or 4
#   pipestatus watch --live             a live table (or one line per change)
#   pipestatus cctray --serve 127.0.0.1:8080   a CCTray feed
#   pipestatus serve --listen 127.0.0.1:8080   a live dashboard, /metrics, chat notifications
#                                       ([serve] and [notify] tables: see the README)
#
# Found without -c when it is $PIPESTATUS_CONFIG, ./pipestatus.toml or
# ~/.config/pipestatus/pipestatus.toml. Secrets never go in this file: each account names the
# environment variables that hold them (token_env; ak_env and sk_env; password_env); export
# them before running pipestatus.
"""
_EXAMPLE_ACCOUNTS: Final = (
    "# --- accounts: one table per vendor account, [accounts.NAME] ---------------------------\n"
)
_EXAMPLE_PIPELINES: Final = (
    "# --- pipelines: one [[pipelines]] entry each; name is optional -------------------------\n"
    "# (url = \"https://...\" names the pipeline's web page when the vendor's answers have none)\n"
)


def example() -> str:
    """The commented configuration ``pipestatus init`` writes: one account and one pipeline
    of every registered vendor, as each spec writes them."""
    parts = [_EXAMPLE_HEAD, _EXAMPLE_ACCOUNTS]
    parts += [spec.example_account for spec in REGISTRY.values()]
    parts.append(_EXAMPLE_PIPELINES)
    parts += [spec.example_pipeline for spec in REGISTRY.values()]
    return "\n".join(parts)


#: What ``pipestatus init`` writes: every key, commented.
EXAMPLE: Final = example()
