"""Adding a task is one task module plus a model family: this toy text-regression task (the contents of what would be
``src/hfnlp/tasks/text_regression.py``) and its family are registered here and trained end to end through
``hfnlp train``; the run template, recipes, model card, model folder and export know nothing about it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import datasets
import numpy as np
import pytest
import torch
import yaml
from torch import nn
from transformers import DataCollatorWithPadding, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

import hfnlp.tasks
from hfnlp.cli import main
from hfnlp.data.carving import carve_missing_splits
from hfnlp.models import FAMILIES, ModelFamily
from hfnlp.tasks import register_task
from hfnlp.tasks.base import Task
from hfnlp.tasks.text_classification import encode_splits, tokenizer_for_run
from hfnlp.tokenization.text import TextTokenizerConfig, load_saved_tokenizer
from hfnlp.training.run import FitPlan, TaskData
from tests.conftest import one_torch_thread


# ----- the task module: 30 lines ---------------------------------------------------------------------------------
@dataclass
class RegressionData:
    train_file: str
    validation_ratio: float = 0.2
    test_ratio: float = 0.2


class TextRegression(Task):
    name, pipeline_tag, auto_class = "text-regression", "text-classification", "AutoModel"
    data_config, tokenizer_config = RegressionData, TextTokenizerConfig
    set_by_run = ("vocab_size", "pad_token_id")

    def load_data(self, recipe):
        rows = datasets.load_dataset("csv", data_files=recipe.data.train_file, split="train")
        ratios = {"validation_ratio": recipe.data.validation_ratio, "test_ratio": recipe.data.test_ratio}
        splits = carve_missing_splits(
            datasets.DatasetDict(train=rows), seed=recipe.seed, stratify_by_column=None, **ratios
        )
        return TaskData(splits.rename_column("score", "label").cast_column("label", datasets.Value("float32")))

    def prepare_processor(self, recipe, run, data):
        return tokenizer_for_run(run, recipe.tokenizer, data.splits["train"]["text"])

    def load_processor(self, recipe, run):
        return load_saved_tokenizer(run.tokenizer_dir, recipe.tokenizer)

    def build_model(self, recipe, data, processor):
        params = {key: value for key, value in recipe.model.items() if key != "type"}
        config = ToyBagConfig(vocab_size=len(processor), pad_token_id=processor.pad_token_id, **params)
        return FAMILIES[recipe.model["type"]].build_model(config)

    def plan_fit(self, recipe, run, data, processor, model):
        encoded = encode_splits(data.splits, processor, recipe.tokenizer.max_length)
        mse = lambda p: {"mse": float(np.mean((p.predictions.squeeze(-1) - p.label_ids) ** 2))}  # noqa: E731
        return FitPlan(encoded, DataCollatorWithPadding(processor), processor, compute_metrics=mse)

    def card_examples(self, run, data):
        return data.splits["test"]["text"][:2]


# ----- the model family ------------------------------------------------------------------------------------------
class ToyBagConfig(PretrainedConfig):
    model_type = "hfnlp_test_toy_bag"
    vocab_size: int = 100
    pad_token_id: int = 0
    embedding_dim: int = 8


class ToyBagRegressor(PreTrainedModel):
    config_class = ToyBagConfig

    def __init__(self, config: ToyBagConfig) -> None:
        super().__init__(config)
        self.embedding = nn.EmbeddingBag(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.head = nn.Linear(config.embedding_dim, 1)
        self.post_init()

    def forward(self, input_ids, attention_mask, labels=None, **kwargs):
        predictions = self.head(self.embedding(input_ids))
        loss = nn.functional.mse_loss(predictions.squeeze(-1), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=predictions)


@pytest.fixture
def toy_task(monkeypatch):
    """Registered as a task module and a family package register themselves; unregistered after the test."""
    family = ModelFamily(name="toy_bag", auto_classes={"AutoModel": ToyBagRegressor})
    monkeypatch.setitem(FAMILIES, family.name, family)
    family.register()
    monkeypatch.setattr(hfnlp.tasks, "_TASKS", dict(hfnlp.tasks._TASKS))
    return register_task(TextRegression())


def test_a_new_task_module_and_model_family_train_end_to_end(toy_task, tmp_path):
    assert list(toy_task.model_families()) == ["toy_bag"]
    rng = np.random.default_rng(0)
    words = ["good", "bad", "fine", "great", "awful", "meh"]
    value = {"good": 1.0, "bad": -1.0, "fine": 0.2, "great": 2.0, "awful": -2.0, "meh": 0.0}
    rows = [rng.choice(words, size=rng.integers(2, 8)) for _ in range(300)]
    lines = ["text,score"] + [f"{' '.join(r)},{np.mean([value[w] for w in r]):.3f}" for r in rows]
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    recipe = {
        "task": "text-regression",
        "output_dir": str(tmp_path / "run"),
        "data": {"train_file": str(tmp_path / "scores.csv")},
        "tokenizer": {"level": "word", "max_length": 16},
        "model": {"type": "toy_bag", "embedding_dim": 8},
        "training": {
            "num_train_epochs": 8,
            "learning_rate": 0.05,
            "per_device_train_batch_size": 16,
            "metric_for_best_model": "loss",
            "report_to": [],
            "disable_tqdm": True,
        },
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with one_torch_thread():
        assert main(["train", str(tmp_path / "recipe.yaml")]) == 0

    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    variance = float(np.var([float(line.split(",")[1]) for line in lines[1:]]))
    assert metrics["test"]["mse"] < 0.25 * variance  # it learnt the word values, not the mean
    card = (run / "model" / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: text-classification" in card and "toy_bag" in card and "| mse |" in card
    model = FAMILIES["toy_bag"].model_class.from_pretrained(run / "model").eval()
    tokenizer = load_saved_tokenizer(run / "model")
    with torch.no_grad():
        great, awful = model(**tokenizer(["great great", "awful awful"], return_tensors="pt")).logits.squeeze(-1)
    assert great > 1.0 > -1.0 > awful
