"""Image classification end to end through ``hfnlp train``: a tiny timm backbone learns generated shapes, the run
folder is complete, and the saved model, a stock transformers ``timm_wrapper`` folder, predicts identically after
reloading, through ``pipeline``, and in a process where hfnlp cannot be imported, without remote code. Plus the
fine-tuning parts: head learning rate, layer decay, freezing, mixup and the soft-target loss in the trainer."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import (
    AutoImageProcessor,
    AutoModelForImageClassification,
    TimmWrapperForImageClassification,
    TrainerState,
    TrainingArguments,
    pipeline,
)

from hfnlp.cli import main
from hfnlp.data.augmentation import AugmentationConfig, build_mixup, mix_batch
from hfnlp.data.image_folders import ImageDataConfig, load_image_classification, open_image
from hfnlp.errors import RecipeError
from hfnlp.models import FAMILIES
from hfnlp.models.image_classifier import head_parameters, image_classifier_config
from hfnlp.tasks import load_recipe, recipe_from_dict
from hfnlp.tasks.image_classification import (
    FreezeBackboneCallback,
    ImageClassificationTrainer,
    SoftTargetCrossEntropy,
    fine_tuning_param_groups,
)
from tests.conftest import write_image_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
LABELS = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def trained_run(shapes_dir, tmp_path_factory) -> Path:
    recipe = write_image_recipe(
        tmp_path_factory.mktemp("image-run") / "recipe.yaml",
        {
            "train_file": str(shapes_dir),
            "validation_ratio": 0.2,
            "test_ratio": 0.2,
            "augmentation": {"scale": [0.6, 1.0], "rotation": 10, "color_jitter": 0.1},
        },
        {"freeze_backbone_epochs": 1, "head_lr_multiplier": 3.0},
        num_train_epochs=5,
        per_device_train_batch_size=12,
        learning_rate=5e-3,
    )
    assert main(["train", str(recipe)]) == 0
    return recipe.parent / "run"


def test_tiny_backbone_learns_above_chance_and_writes_a_complete_run_folder(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.6  # chance is 1/3
    assert metrics["epochs"] == 5 and metrics["train_samples_per_second"] > 0
    assert metrics["skipped_images"] == {"train": 0} and metrics["ignored_files"] == {"train": 2}
    for name in ("classification_report.json", "classification_report.txt", "confusion_matrix.csv"):
        assert (trained_run / name).is_file()
    for name in ("confusion_matrix.png", "curves.png"):
        assert (trained_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_dir = trained_run / "model"
    assert (model_dir / "model.safetensors").is_file() and not list(model_dir.glob("*.bin"))
    config = json.loads((model_dir / "config.json").read_text())
    assert config["label_names"] == LABELS and config["num_classes"] == 3
    assert config["pretrained_cfg"]["input_size"] == [3, 40, 40]
    assert config["image_processor_type"] == "TimmWrapperImageProcessor"
    # a stock transformers folder: no remote code to trust
    assert config["model_type"] == "timm_wrapper" and config["architectures"] == ["TimmWrapperForImageClassification"]
    assert "auto_map" not in config and not list(model_dir.glob("*.py"))


def test_saved_model_reloads_and_predicts_as_the_trained_one(trained_run):
    recipe = load_recipe(trained_run / "recipe.yaml")
    test = load_image_classification(recipe.data, seed=recipe.seed, validate=False).splits["test"]
    images = [open_image(record) for record in test["image"]]
    model = AutoModelForImageClassification.from_pretrained(trained_run / "model").eval()
    assert type(model) is TimmWrapperForImageClassification
    classifier = pipeline("image-classification", model=str(trained_run / "model"))
    with torch.no_grad():
        logits = model(**classifier.image_processor(images)).logits
    predicted = logits.argmax(-1).tolist()

    # the same test predictions as the run's own confusion matrix (rows = true, columns = predicted)
    with (trained_run / "confusion_matrix.csv").open() as handle:
        saved = np.array([[int(v) for v in row[1:]] for row in list(csv.reader(handle))[1:]])
    matrix = np.zeros((3, 3), dtype=int)
    for true, guess in zip(test["label"], predicted, strict=True):
        matrix[true, guess] += 1
    np.testing.assert_array_equal(matrix, saved)

    # pipeline: same top label and softmax score
    outputs = classifier(images, top_k=1)
    probabilities = logits.softmax(-1)
    for output, probs, guess in zip(outputs, probabilities, predicted, strict=True):
        assert output[0]["label"] == LABELS[guess]
        assert output[0]["score"] == pytest.approx(float(probs[guess]), abs=1e-6)


BLOCK_HFNLP = """
import json, sys
class BlockHfnlp:
    def find_spec(self, name, path=None, target=None):
        if name == "hfnlp" or name.startswith("hfnlp."):
            raise ImportError(f"hfnlp is not installed here ({name})")
sys.meta_path.insert(0, BlockHfnlp())
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline
torch.set_num_threads(1)
images = [Image.open(path).convert("RGB") for path in sys.argv[2:]]
model = AutoModelForImageClassification.from_pretrained(sys.argv[1]).eval()  # no trust_remote_code
with torch.no_grad():
    logits = model(**AutoImageProcessor.from_pretrained(sys.argv[1])(images, return_tensors="pt")).logits.tolist()
outputs = {"logits": logits, "pipeline": pipeline("image-classification", model=sys.argv[1])(images, top_k=3),
           "model_class": type(model).__module__ + "." + type(model).__name__}
try:
    import hfnlp  # noqa: F401
    outputs = "hfnlp was importable"
except ImportError:
    pass
print(json.dumps(outputs))
"""


@pytest.mark.slow
def test_saved_model_loads_without_hfnlp_and_without_remote_code(trained_run, shapes_dir):
    paths = [str(shapes_dir / label / "000.jpg") for label in LABELS]
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_HFNLP, str(trained_run / "model"), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=trained_run,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outside = json.loads(result.stdout.strip().splitlines()[-1])
    assert outside["model_class"].startswith("transformers.models.timm_wrapper.")
    images = [open_image({"path": path, "bytes": None}) for path in paths]
    model = AutoModelForImageClassification.from_pretrained(trained_run / "model").eval()
    with torch.no_grad():
        inside = model(**AutoImageProcessor.from_pretrained(trained_run / "model")(images, return_tensors="pt")).logits
    np.testing.assert_allclose(outside["logits"], inside.numpy(), atol=1e-5)
    in_process = pipeline("image-classification", model=str(trained_run / "model"))(images, top_k=3)
    assert [[o["label"] for o in row] for row in outside["pipeline"]] == [
        [o["label"] for o in row] for row in in_process
    ]
    np.testing.assert_allclose(
        [[o["score"] for o in row] for row in outside["pipeline"]],
        [[o["score"] for o in row] for row in in_process],
        atol=1e-6,
    )


def test_folders_of_earlier_hfnlp_versions_still_load(tmp_path):
    model = tiny_model().eval()
    model.save_pretrained(tmp_path)  # the hfnlp_image_classifier folder of earlier versions, with its auto_map
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "hfnlp_image_classifier"
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits)


def tiny_model(**model):
    section = {"type": "image_classifier", "architecture": "test_resnet", "pretrained": False, "image_size": 32}
    return FAMILIES["image_classifier"].build_model(image_classifier_config(section | model, LABELS))


def test_head_learns_faster_and_layer_decay_slows_lower_layers():
    model = tiny_model(head_lr_multiplier=10.0)
    groups = fine_tuning_param_groups(model, learning_rate=1e-3, weight_decay=0.05)
    head = {id(p) for p in head_parameters(model)}
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in model.parameters())
    for group in groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1
        assert group["lr"] == pytest.approx(1e-2 if in_head.pop() else 1e-3)
        assert group["weight_decay"] in (0.0, 0.05)

    decayed = fine_tuning_param_groups(tiny_model(layer_decay=0.5), learning_rate=1e-3, weight_decay=0.0)
    rates = sorted({round(g["lr"], 12) for g in decayed})
    assert len(rates) >= 3 and rates[0] < 1e-3 / 2 and rates[-1] == pytest.approx(1e-2)


def test_new_head_starts_small_so_predictions_start_near_uniform():
    model = tiny_model().eval()
    with torch.no_grad():
        probabilities = model(torch.randn(4, 3, 32, 32)).logits.softmax(-1)
    assert torch.allclose(probabilities, torch.full_like(probabilities, 1 / 3), atol=0.1)


def test_freeze_callback_trains_only_the_head_then_everything():
    model = tiny_model()
    callback = FreezeBackboneCallback(epochs=2)
    head = {id(p) for p in head_parameters(model)}
    state = TrainerState()
    for epoch, backbone_trains in ((0.0, False), (1.0, False), (2.0, True), (3.0, True)):
        state.epoch = epoch
        callback.on_epoch_begin(None, state, None, model=model)
        for parameter in model.parameters():
            assert parameter.requires_grad == (backbone_trains or id(parameter) in head)


def test_trainer_mixes_training_batches_and_the_model_takes_soft_targets(tmp_path):
    model = tiny_model()
    mixup = build_mixup(AugmentationConfig(mixup=0.4, cutmix=1.0), num_labels=3, label_smoothing=0.1)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], label_smoothing_factor=0.1)
    trainer = ImageClassificationTrainer(model=model, args=args, mixup=mixup)
    assert trainer.label_smoother is None  # the smoothing lives in mixup's soft targets
    inputs = {"pixel_values": torch.randn(6, 3, 32, 32), "labels": torch.tensor([0, 1, 2, 0, 1, 2])}

    model.train()
    np.random.seed(3)
    loss = trainer.compute_loss(model, dict(inputs))
    np.random.seed(3)
    mixed, targets = mix_batch(mixup, inputs["pixel_values"], inputs["labels"])
    expected = -(targets * model(pixel_values=mixed).logits.log_softmax(-1)).sum(-1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert model.config.problem_type is None  # soft targets did not turn it into a multi-label model

    model.eval()  # evaluation batches are never mixed; their class indices are smoothed as mixup's targets are
    with torch.no_grad():
        logits = model(pixel_values=inputs["pixel_values"]).logits
        smoothed = torch.nn.functional.cross_entropy(logits, inputs["labels"], label_smoothing=0.1)
        assert trainer.compute_loss(model, dict(inputs)).item() == pytest.approx(smoothed.item(), rel=1e-5)


def test_loss_smooths_class_indices_and_sums_over_the_accumulated_batch_when_trainer_says_its_size():
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 1])
    targets = torch.nn.functional.one_hot(labels, 3).float() * 0.9 + 0.1 / 3  # the same smoothing, as soft targets
    loss = SoftTargetCrossEntropy(label_smoothing=0.1)
    mean = loss({"logits": logits}, labels)
    assert mean.item() == pytest.approx(-(targets * logits.log_softmax(-1)).sum(-1).mean().item(), rel=1e-5)
    assert loss({"logits": logits}, targets).item() == pytest.approx(mean.item(), rel=1e-5)  # soft: as given
    # two accumulated batches of 4 images: each contributes its sum / 8, so the steps add up to the mean over 8
    assert loss({"logits": logits}, labels, num_items_in_batch=8).item() == pytest.approx(mean.item() / 2, rel=1e-5)


def test_labels_come_from_the_data_and_model_values_are_checked_when_the_recipe_loads():
    raw = yaml.safe_load((RECIPES / "image-quickstart.yaml").read_text())
    with pytest.raises(RecipeError, match="model.num_labels is set from the data; remove it"):
        recipe_from_dict({**raw, "model": {"type": "image_classifier", "num_labels": 4}})
    with pytest.raises(RecipeError, match="model \\(image_classifier\\): .*head_lr_multiplier"):
        recipe_from_dict({**raw, "model": {"type": "image_classifier", "head_lr_multiplier": 0.0}})


@pytest.mark.parametrize("name", ["image-quickstart", "flowers-finetune", "flowers-scratch", "hotdog-finetune"])
def test_shipped_recipes_are_valid(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.task == "image-classification" and isinstance(recipe.data, ImageDataConfig)
    config = image_classifier_config(recipe.model, ["a", "b"])
    assert config.pretrained_cfg["input_size"][1:] == (config.image_size, config.image_size)
    assert yaml.safe_load((RECIPES / f"{name}.yaml").read_text())["model"]["type"] == "image_classifier"
