"""`python -m proxy` is the same as the `exmo-proxy` console script."""

from proxy.cli import main

raise SystemExit(main())
