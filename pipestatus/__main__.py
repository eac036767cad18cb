"""``python -m pipestatus``: the ``pipestatus`` command."""

from pipestatus.cli import main

raise SystemExit(main())
