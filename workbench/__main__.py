"""``python -m workbench``: the command-line interface (see ``workbench --help``)."""

from workbench.cli import main

raise SystemExit(main())
