"""End to end on synthetic scenes: the model learns, the run folder is complete, the saved model captions the
same in a fresh process and without hfnlp (remote code), the CLI and pipeline work, caches are reused."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, AutoTokenizer, TrainingArguments, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from hfnlp.cli import main
from hfnlp.data.synthetic_scenes import write_imagefolder
from hfnlp.models.captioner import ImageCaptioner
from hfnlp.tasks import get_task
from hfnlp.tasks.image_captioning import CaptioningTrainer
from hfnlp.training.run import TaskData
from hfnlp.training.run_folder import RunFolder
from tests.models.conftest import tiny_config

SCORES = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l"}


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory) -> list[str]:
    """Held-out scenes as PNG files (another seed than the training data)."""
    folder = write_imagefolder(tmp_path_factory.mktemp("scenes"), {"new": 4}, image_size=64, seed=123)
    return sorted(str(path) for path in (folder / "new").glob("*.png"))


def test_model_learns_the_synthetic_scenes(synthetic_run):
    _, summary = synthetic_run
    # an untrained decoder scores about 0; the learnt one names colours, sizes, shapes and their relation
    assert summary["test"]["bleu_4"] >= 0.6, summary["test"]
    assert summary["test"]["cider"] >= 3.0


def test_run_folder_is_complete(synthetic_run):
    folder, summary = synthetic_run
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics["test"]) >= SCORES and set(metrics["validation"]) >= SCORES
    assert metrics["num_beams"] == 3 and metrics["cached_features"] is True and metrics["seconds_per_epoch"] > 0
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert {s["split"] for s in samples} == {"validation", "test"} and all(len(s["references"]) == 2 for s in samples)
    assert (folder / "curves.png").stat().st_size > 0
    model = folder / "model"
    for name in (
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "preprocessor_config.json",
        "recipe.yaml",
        "modeling_captioner.py",
        "configuration_captioner.py",
        "image_captioning.py",
    ):
        assert (model / name).is_file(), name
    config = json.loads((model / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_captioner.ImageCaptioner"
    assert config["custom_pipelines"]["hfnlp-image-captioning"]["impl"] == "image_captioning.ImageCaptioningPipeline"
    assert json.loads((model / "generation_config.json").read_text())["num_beams"] == 3
    assert AutoImageProcessor.from_pretrained(model).size["height"] == 64


def in_process_captions(model_dir: Path, files: list[str]) -> list[str]:
    captioner = pipeline("image-captioning", model=str(model_dir))  # in-process classes, no remote code
    return [captioner(path)[0]["generated_text"] for path in files]


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import json, sys

    class NoHfnlp:
        def find_spec(self, name, path=None, target=None):
            if name == "hfnlp" or name.startswith("hfnlp."):
                raise ImportError(f"hfnlp is not installed here ({name})")

    sys.meta_path.insert(0, NoHfnlp())
    from transformers import pipeline

    folder, files = sys.argv[1], sys.argv[2:]
    captioner = pipeline(model=folder, trust_remote_code=True)  # the task comes from config.json
    assert type(captioner.model).__module__.startswith("transformers_modules.")
    captions = [captioner(path)[0]["generated_text"] for path in files]
    print(json.dumps({"captions": captions, "hfnlp_loaded": any(m.startswith("hfnlp") for m in sys.modules)}))
    """
)


@pytest.mark.slow
def test_saved_model_gives_identical_beam_captions_in_a_fresh_process_without_hfnlp(synthetic_run, scene_files):
    model_dir = synthetic_run[0] / "model"
    expected = in_process_captions(model_dir, scene_files)
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(model_dir), *scene_files],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote == {"captions": expected, "hfnlp_loaded": False}


def test_cli_captions_and_writes_attention_maps(synthetic_run, scene_files, tmp_path, capsys):
    model_dir = synthetic_run[0] / "model"
    assert main(["caption", str(synthetic_run[0]), scene_files[0], "--attention-png", str(tmp_path / "att.png")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{scene_files[0]}\t{in_process_captions(model_dir, scene_files[:1])[0]}"
    assert (tmp_path / "att.png").stat().st_size > 0


def test_cli_reports_broken_images_clearly(synthetic_run, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert main(["caption", str(synthetic_run[0]), str(broken)]) == 2
    assert "broken.jpg" in capsys.readouterr().err


def test_pipeline_attention_output_matches_generate(synthetic_run, scene_files):
    model_dir = synthetic_run[0] / "model"
    captioner = pipeline("image-captioning", model=str(model_dir))
    output = captioner(scene_files[0], output_attentions=True, num_beams=1)[0]
    assert output["generated_text"] == " ".join(output["words"])
    assert output["attention"].shape[0] == len(output["words"])
    assert np.allclose(output["attention"].sum(axis=(1, 2)), 1.0, atol=1e-4)
    assert "image-captioning" in PIPELINE_REGISTRY.get_supported_tasks()


def test_pipeline_passes_any_generation_setting_and_returns_every_sequence(synthetic_run, scene_files):
    captioner = pipeline("image-captioning", model=str(synthetic_run[0] / "model"))
    settings = {"num_return_sequences": 3, "no_repeat_ngram_size": 1}
    outputs = captioner(scene_files[0], num_beams=4, generate_kwargs=settings, output_attentions=True)
    assert len({output["generated_text"] for output in outputs}) == 3
    for output in outputs:
        assert len(set(output["words"])) == len(output["words"])  # no word twice
        assert output["attention"].shape[0] == len(output["words"])

    def sample(seed: int) -> list[str]:
        torch.manual_seed(seed)
        hot = {"do_sample": True, "temperature": 3.0, "num_return_sequences": 4}
        return [output["generated_text"] for output in captioner(scene_files[1], num_beams=1, generate_kwargs=hot)]

    assert sample(0) == sample(0) and len(set(sample(0))) > 1


def test_feature_cache_is_reused_and_matches_the_encoder(synthetic_run):
    from hfnlp.data.captions import load_caption_data
    from hfnlp.tasks import recipe_from_dict
    from hfnlp.tasks.image_captioning import CaptionImages
    from hfnlp.training.arguments import autocast_dtype

    from .conftest import synthetic_recipe

    folder = synthetic_run[0]
    recipe = recipe_from_dict(synthetic_recipe(str(folder)))
    model = ImageCaptioner.from_pretrained(folder / "model").eval()
    images = CaptionImages(
        load_caption_data(recipe.data, seed=recipe.seed).splits,
        get_task(recipe.task).load_processor(recipe, RunFolder(folder)).image_processor,
    )
    encode = model.encode_images
    model.encode_images = lambda pixels: pytest.fail("the cached feature maps were recomputed")
    autocast = autocast_dtype(recipe.training.mixed_precision)  # as training cached them
    images.cache_features(model, folder / "features", autocast)
    cached = torch.from_numpy(np.asarray(images.features[[0, len(images) - 1]])).float()
    with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
        fresh = encode(images.pixel_values([0, len(images) - 1])).flatten(2).transpose(1, 2).float()
    assert torch.allclose(cached, fresh, atol=2e-2, rtol=1e-2)

    # Features computed in another precision are another cache, not a silent mix.
    model.encode_images = encode
    other = None if autocast is not None else torch.bfloat16
    images.cache_features(model, folder / "features", other)
    assert len(list((folder / "features").glob("*.npy"))) == 2


def test_tokenizer_is_reused_on_resume_only_for_the_same_training_captions(synthetic_run):
    from datasets import Dataset, DatasetDict

    from hfnlp.data.captions import load_caption_data
    from hfnlp.errors import DataError
    from hfnlp.tasks import recipe_from_dict

    from .conftest import synthetic_recipe

    run = RunFolder(synthetic_run[0])
    recipe = recipe_from_dict(synthetic_recipe(str(run.path)))
    task = get_task(recipe.task)
    saved = AutoTokenizer.from_pretrained(run.tokenizer_dir).get_vocab()
    same = TaskData(load_caption_data(recipe.data, seed=recipe.seed).splits)
    assert task.prepare_processor(recipe, run, same).tokenizer.get_vocab() == saved
    other = TaskData(DatasetDict({"train": Dataset.from_dict({"captions": [["zebras graze on a savanna"]]})}))
    with pytest.raises(DataError, match="vocabulary was trained on other training data"):
        task.prepare_processor(recipe, run, other)


def test_encoder_gets_its_own_learning_rate(tmp_path):
    model = ImageCaptioner(tiny_config(encoder_training="partial", encoder_learning_rate=1e-5))
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, report_to=[], use_cpu=True)
    trainer = CaptioningTrainer(model=model, args=args, evaluator=None)
    optimizer = trainer.create_optimizer()
    encoder_ids = {id(p) for p in model.encoder.parameters() if p.requires_grad}
    for group in optimizer.param_groups:
        is_encoder = {id(p) in encoder_ids for p in group["params"]}
        assert len(is_encoder) == 1
        assert group["lr"] == (1e-5 if is_encoder.pop() else 1e-3)
    assert sum(len(group["params"]) for group in optimizer.param_groups) == sum(
        1 for p in model.parameters() if p.requires_grad
    )


def test_fine_tuning_the_encoder_from_pixels_with_a_local_weights_file(tmp_path):
    """Partial fine-tuning (no feature cache: the collator feeds pixels) starting from a local weights file."""
    import timm
    from safetensors.torch import save_file

    from hfnlp.tasks import get_task, recipe_from_dict
    from hfnlp.training.run import RunOptions

    from .conftest import synthetic_recipe

    weights = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    save_file(weights, str(tmp_path / "lite0.safetensors"))
    raw = synthetic_recipe(str(tmp_path / "run"), builtin_size=40, image_size=32, cache_features=False)
    raw["model"].update(
        beam_size=2,
        encoder_out_index=1,
        encoder_pretrained=False,
        encoder_weights=str(tmp_path / "lite0.safetensors"),
        encoder_training="partial",
        encoder_learning_rate=1e-3,
        hidden_size=16,
    )
    raw["training"].update(max_steps=3, per_device_train_batch_size=8)
    summary = get_task("image-captioning").run(recipe_from_dict(raw), RunOptions())
    assert summary["cached_features"] is False and set(summary["test"]) >= SCORES
    trained = ImageCaptioner.from_pretrained(tmp_path / "run" / "model")
    stages = trained.encoder_stages()
    last_stage = dict(stages[-1].named_parameters())
    first_stage = dict(stages[0].named_parameters())
    prefix = {id(p): name for name, p in trained.encoder.named_parameters()}
    changed = {
        prefix[id(p)]: not torch.equal(p, weights[prefix[id(p)]]) for p in [*last_stage.values(), *first_stage.values()]
    }
    assert any(changed[prefix[id(p)]] for p in last_stage.values())  # the trainable last stage moved
    assert not any(changed[prefix[id(p)]] for p in first_stage.values())  # frozen stages kept the file's weights
