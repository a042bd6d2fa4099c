"""Run as a script by ``test_remote_code.py``: load saved model folders with transformers alone.

An import hook makes ``import hfnlp`` fail *before* transformers is imported, so only the code inside each folder
(``trust_remote_code=True``) can run. Reads ``[{"family", "folder"}, ...]`` as JSON on stdin; prints, as JSON,
per folder the Auto-class outputs, the ``pipeline`` outputs and what each Python snippet of the model card printed.
"""

from __future__ import annotations

import sys


class BlockHfnlp:
    """A ``sys.meta_path`` finder that refuses ``hfnlp`` and its sub-modules."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "hfnlp" or name.startswith("hfnlp."):
            raise ImportError(f"hfnlp is not importable here ({name})")


if __name__ == "__main__":  # before transformers is imported (test_remote_code.py imports this module too)
    sys.meta_path.insert(0, BlockHfnlp())

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoImageProcessor,
    AutoModelForImageClassification,
    AutoModelForImageTextToText,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    pipeline,
)

TEXTS = ["the food was great and fresh", "awful cold order", "my order today was really very slow and late"]
CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def card_snippets(folder: Path) -> list[str]:
    """What each Python block of the card's "How to use" section prints when run."""
    section = folder.joinpath("README.md").read_text(encoding="utf-8").split("## How to use")[1].split("\n## ")[0]
    printed = []
    for code in CODE_BLOCK.findall(section):
        with contextlib.redirect_stdout(io.StringIO()) as output:
            exec(compile(code, f"{folder}/README.md", "exec"), {"__name__": "__main__"})
        printed.append(output.getvalue())
    return printed


def load(family: str, folder: Path) -> dict:
    from PIL import Image

    result: dict = {"snippets": card_snippets(folder)}
    with torch.no_grad():
        if family == "captioner":
            model = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True).eval()
            pixels = AutoImageProcessor.from_pretrained(folder)(Image.open(folder / "example.png"), return_tensors="pt")
            result["auto"] = model.generate(pixel_values=pixels["pixel_values"]).tolist()
            captioner = pipeline(model=str(folder), trust_remote_code=True)  # the task comes from the folder
            result["pipeline"] = captioner(str(folder / "example.png"))
        elif family == "image_classifier":
            model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
            pixels = AutoImageProcessor.from_pretrained(folder)(Image.open(folder / "example.png"), return_tensors="pt")
            result["auto"] = model(**pixels).logits.tolist()
            classifier = pipeline("image-classification", model=str(folder), trust_remote_code=True)
            result["pipeline"] = classifier(str(folder / "example.png"))
        else:
            model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
            result["auto"] = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits.tolist()
            classifier = pipeline("text-classification", model=str(folder), trust_remote_code=True)
            result["pipeline"] = classifier(TEXTS)
    result["model_module"] = type(model).__module__
    return result


if __name__ == "__main__":
    torch.set_num_threads(1)
    outputs = {spec["family"]: load(spec["family"], Path(spec["folder"])) for spec in json.load(sys.stdin)}
    outputs["hfnlp_modules"] = sorted(name for name in sys.modules if name.split(".")[0] == "hfnlp")
    print(json.dumps(outputs))
