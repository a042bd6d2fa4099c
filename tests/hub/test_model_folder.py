"""Every run ends with a complete, shareable model folder and a model card with its real results;
``hfnlp export RUN --checkpoint N`` builds the same folder from a checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoTokenizer

from hfnlp.cli import main
from tests.hub.conftest import FAMILIES

# Anything that betrays an unfilled template: Jinja syntax, Python's None / nan, the Hub's default filler.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{%|\bNone\b|\bnan\b|More Information Needed|\bTODO\b|<[A-Z_]+>")
SECTIONS = ["## Intended use", "## How to use", "## Training data", "## Training procedure", "## Results",
            "## Limitations", "## Environment"]  # fmt: skip


def model_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("family", FAMILIES)
def test_run_ends_with_a_complete_model_folder_and_card(run_of, family):
    run = run_of(family)
    folder = run / "model"
    files = model_files(folder)
    config = json.loads((folder / "config.json").read_text())
    for name in ("model.safetensors", "config.json", "recipe.yaml", "README.md"):
        assert name in files, name
    assert not any(name.endswith((".bin", ".pt", ".pth")) for name in files), "no pickles"
    for reference in config.get("auto_map", {}).values():
        assert f"{reference.split('.')[0]}.py" in files, reference
    if family == "image_classifier":
        assert config["model_type"] == "timm_wrapper" and "auto_map" not in config  # a stock folder, no remote code
        assert config["label_names"] and config["pretrained_cfg"]["input_size"]  # the image processor's settings
    elif family == "captioner":
        assert {"generation_config.json", "preprocessor_config.json", "tokenizer.json"} <= files
        assert "hfnlp-image-captioning" in config["custom_pipelines"]
    else:
        assert config["id2label"] == {"0": "negative", "1": "positive"} and "tokenizer.json" in files
    assert yaml.safe_load((folder / "recipe.yaml").read_text())["model"]["type"] == family

    text = (folder / "README.md").read_text(encoding="utf-8")
    assert not PLACEHOLDER.findall(text)
    assert [s for s in SECTIONS if s not in text] == []
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag and card.data.license == "apache-2.0"
    assert card.data.datasets is None  # local data: described in the body, never named as a Hub data set
    assert card.data.language == (None if family == "image_classifier" else "en")
    metrics = json.loads((run / "metrics.json").read_text())
    reported = {(r.dataset_split, r.metric_name.split(" (")[0]): r.metric_value for r in card.data.eval_results}
    key = ("test", "Accuracy") if family != "captioner" else ("test", "BLEU-4")
    assert reported[key] == round(metrics["test"]["accuracy" if family != "captioner" else "bleu_4"], 4)
    for name, value in metrics["environment"].items():
        if value is not None and name != "cpu_count":
            assert str(value) in text, name
    if family == "captioner":
        first = json.loads((run / "samples.jsonl").read_text().splitlines()[0])
        assert "Sample captions" in text and first["caption"] in text
        assert "example.png" in files
    else:
        assert "Confusion matrix" in text
        matrix = json.loads((run / "classification_report.json").read_text())["confusion_matrix"]
        assert "| " + " | ".join(map(str, matrix[0])) + " |" in text


def test_export_of_the_best_checkpoint_rebuilds_the_final_folder(run_of, tmp_path):
    run = run_of("text_cnn")
    best = Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"]).name
    step = int(best.removeprefix("checkpoint-"))
    assert main(["export", str(run), "--checkpoint", str(step), "--output", str(tmp_path / "export")]) == 0
    exported, final = tmp_path / "export", run / "model"
    assert model_files(exported) == model_files(final)
    # Trainer turns use_cache off while training and the final save keeps it; it means nothing to these models.
    configs = [json.loads((folder / "config.json").read_text()) for folder in (exported, final)]
    assert [{k: v for k, v in c.items() if k != "use_cache"} for c in configs] == [configs[0]] * 2
    weights, final_weights = load_file(exported / "model.safetensors"), load_file(final / "model.safetensors")
    assert weights.keys() == final_weights.keys() and all(weights[k].equal(final_weights[k]) for k in weights)
    # tokenizer.json also records the last call's truncation state; what matters is the vocabulary and the ids
    tokenizers = [AutoTokenizer.from_pretrained(folder) for folder in (exported, final)]
    texts = ["the food was great", "awful cold order today, unknownword"]
    assert tokenizers[0].get_vocab() == tokenizers[1].get_vocab()
    assert tokenizers[0](texts)["input_ids"] == tokenizers[1](texts)["input_ids"]
    card = (exported / "README.md").read_text()
    assert "| accuracy |" in card and "checkpoint" not in card.split("## Intended use")[0]


def test_export_of_an_earlier_checkpoint_reports_its_own_validation_scores(run_of):
    run = run_of("text_cnn")
    best = Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"]).name
    others = sorted(p.name for p in run.glob("checkpoint-*") if p.name != best)
    if not others:
        pytest.skip("the run kept only its best checkpoint")
    step = int(others[0].removeprefix("checkpoint-"))
    assert main(["export", str(run), "--checkpoint", str(step)]) == 0
    card = (run / "export" / others[0] / "README.md").read_text()
    state = json.loads((run / others[0] / "trainer_state.json").read_text())
    accuracy = next(e["eval_accuracy"] for e in state["log_history"] if e.get("step") == step and "eval_accuracy" in e)
    assert f"**checkpoint {step}**" in card and f"| accuracy | {accuracy:.4f} |" in card
    assert not PLACEHOLDER.findall(card)


def test_export_names_the_checkpoints_a_run_has(run_of, capsys):
    assert main(["export", str(run_of("text_cnn")), "--checkpoint", "99999"]) == 2
    assert "checkpoints of this run: [" in capsys.readouterr().err


def test_only_the_example_image_is_copied_whatever_the_example_texts_say(tmp_path):
    """Example texts come from the data: a long review (over the file-name limit) or one that names a file must be
    used as text, never looked up or copied as a path (the quickstart's 300-character reviews once broke the save)."""
    from hfnlp.hub.model_card import usage_examples
    from hfnlp.training.run_folder import RunFolder

    run, model_dir = RunFolder(tmp_path / "run"), tmp_path / "model"
    run.path.mkdir()
    model_dir.mkdir()
    (run.path / "recipe.yaml").write_text("secret: x", encoding="utf-8")
    (run.path / "example.png").write_bytes(b"png")
    examples = ["春节期间去住了3个晚上。" * 30, "recipe.yaml", "../run/recipe.yaml", "example.png"]
    run.card_examples_path.write_text(json.dumps(examples, ensure_ascii=False), encoding="utf-8")
    assert usage_examples(run, model_dir) == examples
    assert sorted(path.name for path in model_dir.iterdir()) == ["example.png"]


def test_a_saved_image_classifier_folder_is_served_demoed_and_checked_like_the_others(run_of):
    """The stock timm_wrapper folder is an hfnlp image classifier to every loader (serve, demo, evaluate)."""
    from PIL import Image

    from hfnlp.pipelines.loading import IMAGE_CLASSIFIER, check_model_folder, kind_of, model_kind
    from hfnlp.serving.predictors import load_predictor

    folder = run_of("image_classifier") / "model"
    assert kind_of(json.loads((folder / "config.json").read_text())["model_type"]) is IMAGE_CLASSIFIER
    check_model_folder(folder, IMAGE_CLASSIFIER)
    assert model_kind(folder) is IMAGE_CLASSIFIER
    predictor = load_predictor(folder)
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    [ranked] = predictor.forward([image])
    assert predictor.task == "image-classification" and abs(sum(entry["score"] for entry in ranked) - 1) < 1e-4
