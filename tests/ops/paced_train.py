"""``python tests/ops/paced_train.py SECONDS train RECIPE ...``: ``hfnlp ...`` with paced optimizer steps."""

import sys

from pacing import Pace, extended_init

from hfnlp.cli import main
from hfnlp.ops.session import ControlRoom

if __name__ == "__main__":
    ControlRoom.__init__ = extended_init([Pace(float(sys.argv[1]))])
    sys.exit(main(sys.argv[2:]))
