"""Model cards: Hub metadata that parses (license, base model, data sets), real split provenance and precision, and
nothing of this machine (no absolute path) in a card that is pushed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard, metadata_load
from transformers.pipelines import SUPPORTED_TASKS

from hfnlp.hub.model_card import CardSource, data_summary, hub_dataset, render_model_card
from hfnlp.tasks import get_task

BASE_MODELS = {
    "image_classifier": ("pretrained", "timm/test_resnet.r160_in1k"),
    "captioner": ("encoder_pretrained", "timm/test_efficientnet.r160_in1k"),
}


def copied_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoint-*"))
    return copy


@pytest.mark.slow
@pytest.mark.parametrize("family", ["fasttext", "image_classifier", "captioner"])
def test_pushed_card_metadata_parses_and_holds_no_path_of_this_machine(run_of, runs_root, tmp_path, family):
    run = copied_run(run_of(family), tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "mixed_precision": "bf16"}))
    text = render_model_card(CardSource(run, run / "model"), repo_id="someone/tiny-model")
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    metadata = metadata_load(tmp_path / "README.md")
    card = ModelCard(text)
    assert metadata["license"] == card.data.license == "apache-2.0" and "`apache-2.0`" in text
    assert card.data.pipeline_tag in SUPPORTED_TASKS  # a task transformers 5 has (image-to-text is gone)
    assert card.data.datasets is None and card.data.eval_results[0].dataset_type == "custom"
    assert "| mixed precision | bf16 (recipe: auto) |" in text
    for machine_path in (str(runs_root), str(tmp_path), "/tmp/", str(Path.home())):
        assert machine_path not in text
    if family == "fasttext":
        assert "Trained on local data (a CSV file).\n- train: its own file (a CSV file)\n" in text
        assert "- validation: 10% of the source's train rows, carved from train with seed 42" in text
        assert "train_file: reviews.csv" in text  # the recipe shown keeps the file's name, not its folder
    if family == "captioner":  # a built-in set: train only, validation and test carved
        assert "Trained on hfnlp built-in data set synthetic_scenes.\n- train: the source's own split\n" in text


@pytest.mark.slow
@pytest.mark.parametrize("family", list(BASE_MODELS))
def test_a_fine_tuned_vision_card_names_timm_weights_as_its_base_model(run_of, tmp_path, family):
    run = copied_run(run_of(family), tmp_path)
    config_path = run / "model" / "config.json"
    assert ModelCard(render_model_card(CardSource(run, run / "model"))).data.base_model is None  # from scratch
    key, hub_id = BASE_MODELS[family]
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), key: True}))
    card = ModelCard(render_model_card(CardSource(run, run / "model"), repo_id="someone/tiny-model"))
    assert card.data.base_model == hub_id


def test_hub_data_is_named_in_metadata_and_its_own_splits_are_not_called_carved(tmp_path):
    def recipe(hub: str) -> SimpleNamespace:
        data = SimpleNamespace(hub=hub, builtin=None, validation_ratio=0.1, test_ratio=0.2)
        return SimpleNamespace(data=data, seed=7)

    assert hub_dataset(recipe("stanfordnlp/imdb")) == "stanfordnlp/imdb"
    assert hub_dataset(recipe(str(tmp_path))) is None  # a local folder datasets reads is no Hub data set
    summary = data_summary(recipe("stanfordnlp/imdb"), given={"train", "test"})
    assert summary.splitlines() == [
        "Trained on the Hub data set [`stanfordnlp/imdb`](https://huggingface.co/datasets/stanfordnlp/imdb).",
        "- train: the source's own split",
        "- validation: 10% of the source's train rows, carved from train with seed 7",
        "- test: the source's own split",
    ]
    unknown = data_summary(recipe("stanfordnlp/imdb"), given=None).splitlines()[-1]
    assert unknown == "- test: the source's own split if it has one, else 20% of the source's train rows, carved " + (
        "from train with seed 7"
    )
    refit = recipe("stanfordnlp/imdb")
    refit.data.train_on_validation = True  # the auto mode's final fit
    assert "validation rows were then added to train" in data_summary(refit, given={"train", "test"}).splitlines()[-1]


def test_the_captioning_tag_is_a_transformers_task():
    assert get_task("image-captioning").pipeline_tag in SUPPORTED_TASKS
