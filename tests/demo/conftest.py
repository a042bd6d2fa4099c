"""The demo tests reuse the explanation tests' tiny trained models, and build a tiny untrained captioner folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.explain.conftest import trained_folder, word_tokenizer  # noqa: F401  (fixtures)
from tests.models.conftest import tiny_config

CAPTIONS = ["a red circle left of a blue square", "a small green triangle above a large red circle"]


@pytest.fixture(scope="session")
def captioner_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete captioner model folder (weights, config with its own code, tokenizer, image processor, pipeline),
    random but small: what training writes, in a second instead of minutes."""
    from hfnlp.models.captioner import ImageCaptioner
    from hfnlp.tasks import get_task
    from hfnlp.tasks.image_captioning import CaptionProcessors, caption_image_processor
    from hfnlp.tokenization.captions import CaptionTokenizerConfig, train_caption_tokenizer

    tokenizer = train_caption_tokenizer(CaptionTokenizerConfig(min_frequency=1, max_length=8), CAPTIONS)
    config = tiny_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        max_caption_length=8,
    )
    torch.manual_seed(0)
    model = ImageCaptioner(config).eval()
    folder = tmp_path_factory.mktemp("captioner") / "model"
    processors = CaptionProcessors(tokenizer, caption_image_processor("tf_efficientnet_lite0", 32))
    get_task("image-captioning").complete_model_folder(model, processors, folder)
    return folder


@pytest.fixture(scope="session")
def image_classifier_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny image classifier saved as training saves it: a stock transformers ``timm_wrapper`` folder."""
    from hfnlp.models import FAMILIES
    from hfnlp.models.image_classifier import image_classifier_config
    from hfnlp.tasks import get_task

    section = {"type": "image_classifier", "architecture": "test_resnet", "pretrained": False, "image_size": 32}
    config = image_classifier_config(section, ["circle", "square", "triangle"])
    torch.manual_seed(0)
    model = FAMILIES["image_classifier"].build_model(config).eval()
    folder = tmp_path_factory.mktemp("image-classifier") / "model"
    model.save_pretrained(folder)
    get_task("image-classification").complete_model_folder(model, None, folder)
    return folder
