"""Print a table of image-captioning results from run folders.

    python scripts/bench_captioning.py                      # the recipes' default run folders under runs/
    python scripts/bench_captioning.py runs/a runs/b --markdown

For a finished run the scores are the final beam-search scores in ``metrics.json`` (test split when there is
one, else validation); for a run still training, the best evaluation so far from its latest checkpoint's
``trainer_state.json`` (marked ``running``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", default=DEFAULT_RUNS, help="run folders (default: the recipes' ones)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    rows = [row for row in (run_row(Path(folder)) for folder in args.runs) if row is not None]
    if not rows:
        raise SystemExit("no finished or running captioning runs found in: " + ", ".join(args.runs))
    print(format_table(rows, markdown=args.markdown))


if __name__ == "__main__":
    main()
