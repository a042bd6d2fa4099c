"""``python -m hfnlp`` (and ``accelerate launch -m hfnlp train ...``) runs the command line.

Importing :mod:`hfnlp.cli` comes first: it sets OpenMP's wait policy before anything loads torch.
"""

import sys

from hfnlp.cli import main

sys.exit(main())
