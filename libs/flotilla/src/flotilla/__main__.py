"""``python -m flotilla serve APP``: see :mod:`flotilla.cli`."""

from flotilla.cli import main

raise SystemExit(main())
