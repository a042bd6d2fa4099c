"""Run as a script by ``test_demo.py``: import a Space folder's ``app.py`` with hfnlp unimportable, as on a Hugging
Face Space, and print as JSON what its page's function ``API`` (``classify`` or ``caption``) answers for each input
given on the command line (``space_without_hfnlp.py SPACE API INPUT...``): a text, or for an image page an image
file. Images in the answers are printed as their ``[width, height]``."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.hub
    from tests.hub.without_hfnlp import BlockHfnlp

    sys.meta_path.insert(0, BlockHfnlp())
    space, api, inputs = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3:]
    sys.path.insert(0, str(space))
    import json
    import os

    from PIL import Image

    if all(Path(value).is_file() for value in inputs):  # an image page
        inputs = [Image.open(Path(path).resolve()) for path in inputs]  # before chdir: paths are the caller's
    os.chdir(space)  # app.py names its model folder relative to the Space, as Spaces run it
    import app

    (function,) = [block.fn for block in app.demo.fns.values() if block.api_name == api]
    answers = [function(value) for value in inputs]
    hfnlp_modules = sorted(name for name in sys.modules if name.split(".")[0] == "hfnlp")
    print(json.dumps({"answers": answers, "hfnlp_modules": hfnlp_modules}, default=lambda image: list(image.size)))
