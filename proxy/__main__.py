"""`python -m proxy` is the same as the `exmo-proxy` console script."""

from proxy.cli.main import main

raise SystemExit(main())
