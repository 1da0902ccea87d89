"""`python -m inventory` is the `inventory` command."""

from inventory.cli import main

raise SystemExit(main())
