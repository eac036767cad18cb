"""``pipestatus serve``: one watch, many faces: a live dashboard at ``/``, Prometheus metrics,
the CCTray feed, a JSON API, a health check and chat notifications (:mod:`pipestatus.serve`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Final

from pipestatus.cli.args import (
    client_options,
    config_option,
    host_port,
    positive,
    subcommand,
    verbose_option,
)
from pipestatus.cli.config import Config, Secret, account_scopes
from pipestatus.cli.durable import open_durable
from pipestatus.cli.reading import followed_pipelines
from pipestatus.cli.runtime import EXIT_OK, EXIT_USAGE, load, run
from pipestatus.cli.screen import out, say_problems
from pipestatus.cli.serveconf import Service, resolve_service
from pipestatus.watch.records import Store

__all__ = ["DEFAULT_LISTEN", "define", "handler", "open_store"]

#: Where ``serve`` listens without ``--listen``: loopback only, safe by default.
DEFAULT_LISTEN: Final = ("127.0.0.1", 8080)

DESCRIPTION = """\
Serve every configured pipeline from one watch: an HTML dashboard at / that updates live
(server-sent events at /events), Prometheus metrics at /metrics, the CCTray feed at
/cctray.xml (?account=, ?name=), every latest run as JSON at /api/v1/runs and /healthz (200
while the watch runs, 503 once it has stopped); and chat notifications as the file's [notify]
rules say (webhook, Slack, DingTalk, Feishu, WeCom).

It binds 127.0.0.1 unless told otherwise. With [serve] token_env, every path wants that
token (Authorization: Bearer, or HTTP Basic with the token as password). Accounts that are
down, refuse their token or hang do not stop it: their pipelines show as unreadable. A bad
[serve] or [notify] setting, or a variable they name that is not set, exits 2 at startup."""

EXAMPLE = """\
  pipestatus serve -c pipestatus.toml --listen 127.0.0.1:8080
  curl -s 127.0.0.1:8080/metrics | grep pipestatus_pipeline_status"""


def define(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommand(
        sub,
        "serve",
        summary="a live dashboard, metrics, the CCTray feed and chat notifications",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    config_option(parser)
    parser.add_argument(
        "--listen",
        type=host_port,
        metavar="HOST:PORT",
        help="where to serve (port 0: any free port; default 127.0.0.1:8080)",
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="remember in this SQLite file: a restart neither repeats nor misses a change "
        "(nor a notification)",
    )
    parser.add_argument(
        "--interval",
        type=positive,
        metavar="S",
        help="seconds between polls (default: [serve] interval, else 30)",
    )
    parser.add_argument("--duration", type=positive, metavar="S", help="stop serving after S s")
    parser.add_argument(
        "--heartbeat",
        type=positive,
        default=15.0,
        metavar="S",
        help="seconds between the page's heartbeats (a page missing them says it is stale)",
    )
    client_options(parser)
    verbose_option(parser)
    parser.set_defaults(handler=handler)


def open_store(path: str | None) -> Store | None:
    """The watch's durable store for ``--state FILE`` (SQLite; see
    :func:`~pipestatus.cli.durable.open_durable`), or ``None``: in memory."""
    return open_durable(state=path).store if path is not None else None


def handler(args: argparse.Namespace) -> int:
    config, tokens = load(args)
    service = resolve_service(config.serve, config.notify, os.environ, source=config.source)
    store = open_store(args.state)
    return run(_serve(args, config, tokens, service, store))


async def _serve(
    args: argparse.Namespace,
    config: Config,
    tokens: Mapping[str, Secret],
    service: Service,
    store: Store | None,
) -> int:
    from prometheus_client import disable_created_metrics

    from pipestatus.client import Client
    from pipestatus.serve.metrics import Metrics
    from pipestatus.serve.service import run_service

    disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: our process
    metrics = Metrics()
    interval = args.interval or config.serve.interval
    async with Client(
        timeout=args.request_timeout, retries=args.retries, on_attempt=metrics.on_attempt
    ) as client:
        followed = await followed_pipelines(client, config, tokens)
        host, port = args.listen or DEFAULT_LISTEN
        problems = await run_service(
            client,
            config,
            followed,
            service,
            metrics=metrics,
            host=host,
            port=port,
            interval=interval,
            duration=args.duration,
            grace=args.request_timeout * (args.retries + 2) + interval,
            heartbeat=args.heartbeat,
            group_by=config.serve.group_by,
            say=out,
            scopes=account_scopes(client, config, tokens, followed),
            store=store,
        )
    say_problems(problems)
    sys.stdout.flush()
    return EXIT_USAGE if problems else EXIT_OK
