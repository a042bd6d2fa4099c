"""``python -m hfnlp`` (and ``accelerate launch -m hfnlp train ...``) runs the command line.

Importing :mod:`hfnlp.cli` loads no torch: its ``main`` chooses OpenMP's wait policy before a command loads it.
"""

import sys

from hfnlp.cli import main

sys.exit(main())
