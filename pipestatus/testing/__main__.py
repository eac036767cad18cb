"""``python -m pipestatus.testing``: run the simulated vendor server until SIGTERM or SIGINT.

The options and their defaults are in :mod:`pipestatus.testing._standalone`; ``--help`` lists
them.
"""

from pipestatus.testing._standalone import main

raise SystemExit(main())
