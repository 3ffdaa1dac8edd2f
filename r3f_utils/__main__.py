"""``python -m r3f_utils``: see ``r3f_utils.cli``."""

from r3f_utils.cli import main

raise SystemExit(main())
