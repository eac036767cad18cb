"""``pipestatus serve``: one watch, many faces. The package, by job:

* :mod:`~pipestatus.serve.board`: what the service knows of every pipeline (the one state);
* :mod:`~pipestatus.serve.app`: the :mod:`aiohttp.web` application, its routes and token guard;
* :mod:`~pipestatus.serve.page` (built with :mod:`~pipestatus.serve.html`, which escapes every
  value) and ``assets/``: the dashboard; :mod:`~pipestatus.serve.events`: its live updates;
* :mod:`~pipestatus.serve.metrics`: ``/metrics`` (prometheus-client, a registry of its own);
* :mod:`~pipestatus.serve.feed`: ``/cctray.xml``; :mod:`~pipestatus.serve.api`: the JSON API
  and ``/healthz``;
* :mod:`~pipestatus.serve.notify`: chat notifications from queues that never slow the watch;
* :mod:`~pipestatus.serve.service`: all of it around one watch.

The command is :mod:`pipestatus.cli.commands.serve`; its configuration (``[serve]``,
``[notify]``) is :mod:`pipestatus.cli.serveconf`.
"""

from __future__ import annotations

__all__: list[str] = []
