"""``python -m pipestatus.cli``: the ``pipestatus`` command."""

from pipestatus.cli import main

raise SystemExit(main())
