"""``python -m pipestatus.testing``: run the simulated vendor server until SIGTERM or SIGINT."""

from pipestatus.testing import main

raise SystemExit(main())
