"""``python -m sp404d`` is the same as the ``sp404d`` command."""

from sp404d.cli import main

raise SystemExit(main())
