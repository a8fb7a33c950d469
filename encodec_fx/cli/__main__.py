"""`python -m encodec_fx.cli`: the `encodec-fx` command without its installed script."""

import sys

from . import main

sys.exit(main())
