"""``python -m hfnlp`` (and ``accelerate launch -m hfnlp train ...``) runs the command line."""

import sys

from hfnlp.cli import main

sys.exit(main())
