"""Flowers benchmark: EfficientNet-Lite0 fine-tuned with and without augmentation, and trained from scratch.

    python scripts/bench_vision.py --train    # train every variant without a metrics.json yet, then print
    python scripts/bench_vision.py            # print the table from the finished runs
    python scripts/bench_vision.py --speed    # images/s of hfnlp against this machine's floor (a few minutes)

Each variant trains in its own ``hfnlp train`` process, logging to ``<runs-dir>/<variant>.log``; the table
(test accuracy, macro F1, epochs, training time, training images per second) is read from the run folders'
``metrics.json``. The runs are long on a CPU: start them in the background, e.g.
``OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 nohup python scripts/bench_vision.py --train > runs/bench-vision.log 2>&1 &``
(on a CPU shared with other jobs one intra-op thread was about twice as fast as two: less waiting on each other).

``--speed`` times two workloads against their floor (``cpu_floor.py``; run it alone on the machine):
frozen-encoder feature extraction at 224 px (hfnlp: the captioner's feature cache over Flickr8k images, decoding
included) and fine-tuning at 160 px, forward + backward + AdamW (hfnlp: ``hfnlp train recipes/flowers-finetune.yaml``
with the backbone unfrozen, steady-state images/s of its training steps).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from cpu_floor import Floor, Setting, autocast, floor, items_per_second, table, trained_run, training_throughput

DATA = Path("../shared/data")  # relative to the repository root
ARCHITECTURE = "tf_efficientnet_lite0"


@dataclass(frozen=True)
class Variant:
    """One benchmark run: a recipe plus ``--set`` overrides."""

    name: str
    recipe: str
    overrides: tuple[str, ...] = ()
    pretrained: bool = True
    augmentation: bool = True


VARIANTS = (
    Variant("finetune-augmented", "recipes/flowers-finetune.yaml"),
    Variant(
        "finetune-no-augmentation",
        "recipes/flowers-finetune.yaml",
        ("data.augmentation.enabled=false",),
        augmentation=False,
    ),
    Variant("scratch-augmented", "recipes/flowers-scratch.yaml", pretrained=False),
)


def train(variant: Variant, runs_dir: Path, extra: list[str]) -> int:
    """Run ``hfnlp train`` for ``variant`` into ``runs_dir/<name>``; return its exit status."""
    overrides = [*variant.overrides, f"output_dir={runs_dir / variant.name}", *extra]
    command = [sys.executable, "-m", "hfnlp", "train", variant.recipe]
    if (runs_dir / variant.name).is_dir():
        command.append("--resume")  # an interrupted run continues from its last checkpoint
    for override in overrides:
        command += ["--set", override]
    log = runs_dir / f"{variant.name}.log"
    print(f"training {variant.name} (log: {log})", flush=True)
    with log.open("w") as handle:
        return subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode


def results_table(runs_dir: Path) -> str:
    """A Markdown table of every variant: finished ones with their numbers, others marked as missing."""
    lines = [
        "| variant | pretrained | augmentation | test accuracy | macro F1 | epochs | train time | images/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        metrics_path = runs_dir / variant.name / "metrics.json"
        flags = (
            f"| {variant.name} | {'yes' if variant.pretrained else 'no'} | {'yes' if variant.augmentation else 'no'} |"
        )
        if not metrics_path.is_file():
            lines.append(f"{flags} not run yet | | | | |")
            continue
        metrics = json.loads(metrics_path.read_text())
        lines.append(
            f"{flags} {metrics['test']['accuracy']:.2%} | {metrics['test']['macro_f1']:.4f} | {metrics['epochs']:g} | "
            f"{metrics['train_runtime_s'] / 60:.1f} min | {metrics['train_samples_per_second']:.1f} |"
        )
    return "\n".join(lines)


def feature_speed(images: int = 256, batch_size: int = 32) -> tuple[str, Floor, float]:
    """Frozen-encoder feature maps at 224 px: the plain loop's floor against hfnlp's feature cache."""
    import torch
    from datasets import Dataset, DatasetDict

    from hfnlp.models import FAMILIES
    from hfnlp.models.backbones import channels_last, create_backbone
    from hfnlp.models.captioner import CaptionerConfig
    from hfnlp.tasks.image_captioning import CaptionImages, caption_image_processor
    from hfnlp.training.arguments import autocast_dtype

    backbone = create_backbone(ARCHITECTURE, pretrained=True).eval()
    pixels = torch.randn(batch_size, 3, 224, 224)

    def plain(setting: Setting) -> float:
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        model, x = backbone.to(memory_format=layout), pixels.to(memory_format=layout)

        def step() -> None:
            with torch.inference_mode(), autocast(setting):
                model.forward_features(x)

        return items_per_second(step, batch_size)

    best = floor(plain)
    files = sorted((DATA / "flickr8k" / "Flicker8k_Dataset").glob("*.jpg"))[:images]
    if len(files) < images:
        raise SystemExit(f"--speed needs {images} Flickr8k images in {DATA / 'flickr8k'}")
    recipe = yaml.safe_load(Path("recipes/flickr8k-attention.yaml").read_text())
    params = {key: value for key, value in recipe["model"].items() if key != "type"}
    config = CaptionerConfig(vocab_size=16, pad_token_id=0, bos_token_id=1, eos_token_id=2, **params)
    model = channels_last(FAMILIES["captioner"].build_model(config))
    rows = Dataset.from_dict({"image": [{"path": str(file), "bytes": None} for file in files]})
    cache = CaptionImages(DatasetDict(train=rows), caption_image_processor(ARCHITECTURE, None))
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        cache.cache_features(model, Path(folder), autocast_dtype("auto"), batch_size=batch_size)
        hfnlp_rate = images / (time.perf_counter() - started)
    return ("frozen-encoder features, 224 px, batch 32", best, hfnlp_rate)


def finetune_speed(batch_size: int = 32, steps: int = 40, extra: tuple[str, ...] = ()) -> tuple[str, Floor, float]:
    """Fine-tuning at 160 px (forward, backward, AdamW): the plain loop's floor against ``hfnlp train``."""
    import torch

    from hfnlp.models.backbones import create_backbone

    backbone = create_backbone(ARCHITECTURE, pretrained=True, num_classes=5).train()
    pixels, labels = torch.randn(batch_size, 3, 160, 160), torch.randint(0, 5, (batch_size,))

    def plain(setting: Setting) -> float:
        layout = torch.channels_last if setting.channels_last else torch.contiguous_format
        model, x = backbone.to(memory_format=layout), pixels.to(memory_format=layout)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step() -> None:
            with autocast(setting):
                loss = torch.nn.functional.cross_entropy(model(x), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        return items_per_second(step, batch_size)

    best = floor(plain)
    if not (DATA / "flowers").is_dir():
        raise SystemExit(f"--speed needs the flowers images in {DATA / 'flowers'}")
    overrides = [
        f"training.max_steps={steps}",
        f"training.per_device_train_batch_size={batch_size}",
        "training.logging_steps=5",
        "model.freeze_backbone_epochs=0",
        "model.image_size=160",  # the floor's size (the recipe trains at 224 px)
        *extra,
    ]
    with trained_run("recipes/flowers-finetune.yaml", overrides, limit_eval=64) as run_dir:
        hfnlp_rate = training_throughput(run_dir)
    return ("fine-tuning, 160 px, batch 32", best, hfnlp_rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="train the variants that have no metrics.json yet")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/bench-vision"))
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra override for every run")
    parser.add_argument("--speed", action="store_true", help="time hfnlp against this machine's floor instead")
    args = parser.parse_args(argv)
    if args.speed:
        print(table([feature_speed(), finetune_speed(extra=tuple(args.extra))]))
        return 0
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    if args.train:
        for variant in VARIANTS:
            if not (args.runs_dir / variant.name / "metrics.json").is_file():
                status = train(variant, args.runs_dir, args.extra) or status
    print(results_table(args.runs_dir))
    return status


if __name__ == "__main__":
    sys.exit(main())
