"""Task tests: one trained synthetic captioning run shared by the captioning tests, one torch thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hfnlp.tasks import get_task, recipe_from_dict
from hfnlp.training.run import RunOptions
from tests.conftest import one_torch_thread


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


def synthetic_recipe(output_dir: str, **data) -> dict:
    """The small synthetic-scenes setting the learning test uses (a cut-down caption-quickstart.yaml)."""
    return {
        "task": "image-captioning",
        "output_dir": output_dir,
        "data": {
            "builtin": "synthetic_scenes",
            "builtin_size": 600,
            "image_size": 64,
            "validation_ratio": 0.1,
            "test_ratio": 0.15,
            **data,
        },
        "tokenizer": {"min_frequency": 1, "max_length": 16},
        "model": {
            "type": "captioner",
            "beam_size": 3,
            "encoder_name": "tf_efficientnet_lite0",
            "encoder_out_index": 2,
            "encoder_training": "frozen",
            "embedding_dim": 32,
            "hidden_size": 256,
            "attention_dim": 64,
            "dropout": 0.1,
        },
        "training": {
            "num_train_epochs": 4,
            "per_device_train_batch_size": 32,
            "per_device_eval_batch_size": 256,
            "learning_rate": 0.005,
            "eval_strategy": "no",
            "logging_steps": 10,
            "report_to": [],
            "disable_tqdm": True,
            "save_total_limit": 1,
        },
    }


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Train once on held-in synthetic scenes; ``(run folder, metrics summary)``."""
    folder = tmp_path_factory.mktemp("caption-run") / "run"
    recipe = recipe_from_dict(synthetic_recipe(str(folder)))
    summary = get_task("image-captioning").run(recipe, RunOptions())
    return folder, summary
