"""`python -m squeezerface`: the command line, the same as the `squeezerface` console script."""

import sys

from squeezerface.cli import main

sys.exit(main())
