"""Print a table of image-captioning results from run folders.

    python scripts/bench_captioning.py                      # the recipes' default run folders under runs/
    python scripts/bench_captioning.py runs/a runs/b --markdown
    python scripts/bench_captioning.py --speed              # hfnlp against this machine's floor (a few minutes)

For a finished run the scores are the final beam-search scores in ``metrics.json`` (test split when there is
one, else validation); for a run still training, the best evaluation so far from its latest checkpoint's
``trainer_state.json`` (marked ``running``).

``--speed`` times two workloads against their floor (``cpu_floor.py``; run it alone on the machine), on the
Flickr8k attention recipe's decoder (its cached 7×7×320 feature maps): decoder training, batch 64 (hfnlp:
``hfnlp train recipes/flickr8k-attention.yaml`` for a few steps, captions per second of its steady-state steps;
floor: the same model's forward + backward + AdamW on a ready batch of 14-word captions, Flickr8k's mean length
with its start and end), and beam search with 3 beams for 20 words (hfnlp: ``generate``; floor: a plain batched beam
search over the model's decoder step).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from cpu_floor import Floor, Setting, autocast, floor, items_per_second, table, trained_run, training_throughput

RECIPE = "recipes/flickr8k-attention.yaml"

DEFAULT_RUNS = (
    "runs/caption-quickstart",
    "runs/flickr8k-attention",
    "runs/flickr8k-no-attention",
    "runs/flickr8k-vgg16-baseline",
    "runs/flickr30k-attention",
)
SCORES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "rouge_l")
HEADER = ("run", "split", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L", "epochs", "s/epoch", "status")


def run_row(folder: Path) -> tuple[str, ...] | None:
    """One table row for a run folder, or ``None`` if it holds neither metrics nor checkpoints."""
    metrics_path = folder / "metrics.json"
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        split = "test" if metrics.get("test") else "validation"
        scores = metrics[split]
        epochs, per_epoch, status = metrics.get("epochs"), metrics.get("seconds_per_epoch"), "done"
    else:
        states = sorted(folder.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
        if not states:
            return None
        history = json.loads(states[-1].read_text())["log_history"]
        evaluations = [entry for entry in history if "eval_bleu_4" in entry]
        if not evaluations:
            return None
        best = max(evaluations, key=lambda entry: entry["eval_bleu_4"])
        split, scores = "validation", {name: best.get(f"eval_{name}") for name in SCORES}
        epochs, per_epoch, status = evaluations[-1]["epoch"], None, f"running (best at epoch {best['epoch']:g})"
    return (
        _run_name(folder),
        split,
        *(_number(scores.get(name)) for name in SCORES),
        _number(epochs, 1),
        _number(per_epoch, 0),
        status,
    )


def _run_name(folder: Path) -> str:
    recipe = folder / "recipe.yaml"
    description = yaml.safe_load(recipe.read_text()).get("description") if recipe.exists() else None
    return f"{folder.name}" + (f" ({description})" if description else "")


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows: list[tuple[str, ...]], markdown: bool = False) -> str:
    """The rows under :data:`HEADER`, as aligned plain text or as a Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(str(cell)) for cell in column) for column in zip(HEADER, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [HEADER, *rows]
    )


def speed(steps: int = 60, batch_size: int = 64, beams: int = 3, words: int = 20) -> list[tuple[str, Floor, float]]:
    """Decoder training and beam search: the floor against hfnlp, on a model trained ``steps`` steps by hfnlp."""
    import torch

    from hfnlp.models.captioner import ImageCaptioner

    overrides = [f"training.max_steps={steps}", "training.logging_steps=10"]
    with trained_run(RECIPE, overrides, limit_eval=16) as run_dir:
        trained = training_throughput(run_dir)
        model = ImageCaptioner.from_pretrained(run_dir / "model")
    regions, channels = 49, 320
    features = torch.randn(batch_size, regions, channels)
    captions = torch.randint(4, model.config.vocab_size, (batch_size, 14))
    captions[:, 0] = model.config.bos_token_id

    def train_step(setting: Setting) -> float:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step() -> None:
            with autocast(setting):
                loss = model(encoder_features=features, input_ids=captions, labels=captions).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        return items_per_second(step, batch_size)

    images = features[:32]

    def beam_search(setting: Setting) -> float:
        model.eval()
        return items_per_second(lambda: _plain_beam_search(model, images, beams, words, setting), len(images))

    def generate() -> None:
        with torch.inference_mode(), autocast(floor_beams.best):
            model.generate(
                encoder_features=images, num_beams=beams, max_new_tokens=words, min_new_tokens=words, do_sample=False
            )

    floor_training = floor(train_step, layouts=False)
    floor_beams = floor(beam_search, layouts=False)
    model.eval()
    generated = items_per_second(generate, len(images))
    return [
        (f"decoder training, batch {batch_size}, cached features", floor_training, trained),
        (f"beam search, {beams} beams, {words} words, 32 images", floor_beams, generated),
    ]


def _plain_beam_search(model: object, features: object, beams: int, words: int, setting: Setting) -> None:
    """The plainest batched beam search over the captioner's decoder step (every beam runs all ``words`` steps)."""
    import torch

    batch = features.shape[0]
    with torch.inference_mode(), autocast(setting):
        repeated = features.repeat_interleave(beams, dim=0)
        state, projected = model._start(repeated)
        tokens = torch.full((batch * beams,), model.config.bos_token_id)
        scores = torch.zeros(batch, beams)
        scores[:, 1:] = float("-inf")  # all beams start equal: keep one
        offsets = torch.arange(batch).unsqueeze(1) * beams
        for _ in range(words):
            logits, state, _ = model._step(tokens, state, repeated, projected)
            vocabulary = logits.shape[-1]
            totals = logits.float().log_softmax(-1).view(batch, beams, vocabulary) + scores.unsqueeze(-1)
            scores, best = totals.view(batch, -1).topk(beams, dim=-1)
            origin = (best // vocabulary + offsets).view(-1)
            tokens = (best % vocabulary).view(-1)
            state = tuple(part[origin] for part in state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", default=DEFAULT_RUNS, help="run folders (default: the recipes' ones)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--speed", action="store_true", help="time hfnlp against this machine's floor instead")
    args = parser.parse_args()
    if args.speed:
        print(table(speed()))
        return
    rows = [row for row in (run_row(Path(folder)) for folder in args.runs) if row is not None]
    if not rows:
        raise SystemExit("no finished or running captioning runs found in: " + ", ".join(args.runs))
    print(format_table(rows, markdown=args.markdown))


if __name__ == "__main__":
    main()
