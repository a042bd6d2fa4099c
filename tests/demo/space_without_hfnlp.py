"""Run as a script by ``test_demo.py``: import a Space folder's ``app.py`` with hfnlp unimportable, as on a Hugging
Face Space, and print as JSON what its page's classify function answers for each text given on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.hub
    from tests.hub.without_hfnlp import BlockHfnlp

    sys.meta_path.insert(0, BlockHfnlp())
    space = Path(sys.argv[1])
    sys.path.insert(0, str(space))
    import json
    import os

    os.chdir(space)  # app.py names its model folder relative to the Space, as Spaces run it
    import app

    (classify,) = [block.fn for block in app.demo.fns.values() if block.api_name == "classify"]
    answers = [classify(text) for text in sys.argv[2:]]
    hfnlp_modules = sorted(name for name in sys.modules if name.split(".")[0] == "hfnlp")
    print(json.dumps({"answers": answers, "hfnlp_modules": hfnlp_modules}))
