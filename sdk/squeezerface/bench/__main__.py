"""`python -m squeezerface.bench`: the benchmark from the command line, and its worker processes' entry."""

import sys

from squeezerface.bench.runner import main

sys.exit(main())
