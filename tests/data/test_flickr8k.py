"""The Flickr8k recipes' data on the shared copy (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hfnlp.data.captions import all_captions, load_caption_data
from hfnlp.tasks import load_recipe
from hfnlp.tokenization.captions import train_caption_tokenizer

REPO = Path(__file__).resolve().parents[2]
FLICKR8K = REPO.parent / "shared" / "data" / "flickr8k"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (FLICKR8K / "Flickr8k.token.txt").exists(), reason="../shared/data/flickr8k is absent"),
]


def test_flickr8k_recipe_data_standard_splits_every_caption():
    recipe = load_recipe(
        REPO / "recipes" / "flickr8k-attention.yaml",
        [
            f"data.captions_file={FLICKR8K / 'Flickr8k.token.txt'}",
            f"data.images_dir={FLICKR8K / 'Flicker8k_Dataset'}",
        ],
    )
    data = load_caption_data(recipe.data, seed=recipe.seed)
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 6000, "validation": 1000}
    assert data.skipped_rows == {}
    assert all(len(captions) == 5 for captions in data.splits["validation"]["captions"])
    dev_names = {Path(image["path"]).name for image in data.splits["validation"]["image"]}
    assert dev_names == set((FLICKR8K / "Flickr_8k.devImages.txt").read_text().split())
    tokenizer = train_caption_tokenizer(recipe.tokenizer, all_captions(data.splits["train"]))
    assert 2000 < len(tokenizer) < 4000  # words seen at least 5 times, as in the tutorials
