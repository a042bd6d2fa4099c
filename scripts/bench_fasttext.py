"""THUCNews: the C++ fastText against hfnlp's bag-of-n-grams models, trained one after the other in one run.

    python scripts/bench_fasttext.py                                   # fastText's grid, then hfnlp's bags
    python scripts/bench_fasttext.py --fasttext-python ~/ftenv/bin/python
    python scripts/bench_fasttext.py --skip-fasttext --set training.sparse_optimizer=rowwise_adagrad \
        --set training.sparse_learning_rate=0.05 --set training.num_train_epochs=2

fastText runs in an environment of its own, never as a dependency of hfnlp: ``--fasttext-python`` names a Python that
imports ``fasttext``; without it the script makes ``runs/bench_fasttext/venv`` with ``uv venv`` and ``uv pip install
fasttext-numpy2`` (the package registry must be reachable that once). Its input is THUCNews in fastText's format,
characters as tokens, written before any timing. For each setting (wordNgrams 2-3 and 10/25/50 epochs; lr 0.5, dim
100, 2M buckets, ``--threads`` threads) it reports ``train_supervised``'s wall time (reading, dictionary, training),
validation and test accuracy and ``predict`` throughput over the test titles (one call for all of them).

The settings' test accuracies lie within a few tenths of a point, the test set's own noise, so which one scores best
on test changes from run to run. The last lines compare each hfnlp run with fastText's best setting chosen as hfnlp
chooses (on the validation split) and with the one best on test.

hfnlp trains the shipped ``--recipes`` (default ``thucnews-wide-mlp-fast``) on the same files, then what its auto
mode trains first on them (``hfnlp train --data ... --candidates wide-mlp-nb --no-refit``); ``--set`` overrides go
to every hfnlp run. For each: Trainer's ``train_runtime`` (the training loop: the column compared with fastText's),
the run's wall time (data, tokenizer, n-gram statistics, training, test evaluation, saving; not the process
start-up) and the test accuracy. Time it alone: a second job on the machine makes every figure meaningless. Raw
results go to ``runs/bench_fasttext/bench-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "thucnews"
OUTPUT_ROOT = REPO / "runs" / "bench_fasttext"
GRID = [(ngrams, epochs) for ngrams in (2, 3) for epochs in (10, 25, 50)]

# Runs in fastText's own environment: train and test one setting, print one JSON line.
FASTTEXT_WORKER = """
import json, sys, time
import fasttext
train, dev, test = sys.argv[1:4]
ngrams, epochs, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
began = time.perf_counter()
model = fasttext.train_supervised(
    train, lr=0.5, dim=100, epoch=epochs, wordNgrams=ngrams, bucket=2_000_000, minCount=1, thread=threads, verbose=0
)
train_s = time.perf_counter() - began
result = {"train_s": train_s}
for split, path in (("validation", dev), ("test", test)):
    labels, texts = [], []
    for line in open(path, encoding="utf-8"):
        label, _, text = line.rstrip("\\n").partition(" ")
        labels.append(label)
        texts.append(text)
    began = time.perf_counter()
    predicted = model.predict(texts)[0]
    predict_s = time.perf_counter() - began
    result[split + "_accuracy"] = sum(p[0] == label for p, label in zip(predicted, labels)) / len(labels)
result["predict_texts_per_s"] = len(texts) / predict_s
print(json.dumps(result))
"""


def fasttext_python(given: str | None) -> str:
    """A Python that imports fasttext: ``given``, or a venv made under ``runs/bench_fasttext`` once."""
    if given:
        return given
    venv = OUTPUT_ROOT / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "fasttext-numpy2"], check=True)
    return str(python)


def fasttext_format(source: Path, target: Path) -> None:
    """THUCNews' ``title<TAB>label`` lines as fastText's ``__label__N c h a r s`` lines."""
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line in lines:
            text, _, label = line.rstrip("\n").rpartition("\t")
            out.write(f"__label__{label} {' '.join(text.replace(' ', ''))}\n")


def run_fasttext(python: str, work: Path, threads: int) -> list[dict]:
    """Every setting of :data:`GRID`, one process each, one after the other."""
    rows = []
    for ngrams, epochs in GRID:
        command = [python, "-c", FASTTEXT_WORKER, *(str(work / f"{split}.ft") for split in ("train", "dev", "test"))]
        done = subprocess.run([*command, str(ngrams), str(epochs), str(threads)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"fastText failed (wordNgrams {ngrams}, {epochs} epochs):\n{done.stderr[-2000:]}")
        rows.append({"system": f"fastText, wordNgrams {ngrams}, {epochs} epochs", **json.loads(done.stdout)})
        print(rows[-1], flush=True)
    return rows


def run_hfnlp(name: str, command: list[str], metrics_path: Path, threads: int, overrides: list[str]) -> dict:
    """One ``hfnlp train`` (``command``: its arguments, run from the repository): its run's times and test accuracy."""
    settings = ["training.disable_tqdm=true", f"training.num_threads={threads}", *overrides]
    command = [sys.executable, "-m", "hfnlp", "train", *command, *[x for item in settings for x in ("--set", item)]]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    process_s = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"hfnlp failed ({name}):\n{done.stderr[-3000:]}")
    metrics = json.loads(metrics_path.read_text())
    return {
        "system": name + (f" ({', '.join(overrides)})" if overrides else ""),
        "train_s": metrics["train_runtime_s"],
        "run_s": metrics["wall_time_s"],
        "process_s": process_s,
        "epochs": metrics["epochs"],
        "test_accuracy": metrics["test"]["accuracy"],
        "model_folder_mb": metrics.get("model_folder_mb"),
    }


def hfnlp_runs(data: Path, work: Path, threads: int, recipes: list[str], overrides: list[str]) -> list[dict]:
    """The shipped ``recipes`` on the data of ``data``, then the auto mode's NB-weighted bag alone."""
    files = {
        "train_file": "train.txt",
        "validation_file": "dev.txt",
        "test_file": "test.txt",
        "label_file": "class.txt",
    }
    data_keys = [x for key, name in files.items() for x in ("--set", f"data.{key}={data / name}")]
    rows = []
    for recipe in recipes:
        output_dir = work / recipe
        command = [str(REPO / "recipes" / f"{recipe}.yaml"), *data_keys, "--set", f"output_dir={output_dir}"]
        rows.append(run_hfnlp(f"hfnlp {recipe}", command, output_dir / "metrics.json", threads, overrides))
        print(rows[-1], flush=True)
    output_dir = work / "auto"
    command = ["--data", str(data / "train.txt"), "--validation-file", str(data / "dev.txt")]
    command += ["--test-file", str(data / "test.txt"), "--label-file", str(data / "class.txt")]
    command += ["--candidates", "wide-mlp-nb", "--no-refit", "--output-dir", str(output_dir)]
    metrics = output_dir / "candidates" / "wide-mlp-nb" / "metrics.json"
    rows.append(run_hfnlp("hfnlp auto mode, NB-weighted wide MLP", command, metrics, threads, overrides))
    print(rows[-1], flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """The Markdown table of every row."""
    lines = [
        "| system | validation acc | test acc | training s | run s (hfnlp: data to saved model) | predict texts/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        validation = f"{row['validation_accuracy']:.4f}" if "validation_accuracy" in row else ""
        run_s = f"{row['run_s']:.1f}" if "run_s" in row else ""
        predict = f"{row['predict_texts_per_s']:,.0f}" if "predict_texts_per_s" in row else ""
        cells = [row["system"], validation, f"{row['test_accuracy']:.4f}", f"{row['train_s']:.1f}", run_s, predict]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def comparison(rows: list[dict]) -> str:
    """Each hfnlp run's training time against fastText's best setting on validation and on test."""
    fasttext = [row for row in rows if "validation_accuracy" in row]
    if not fasttext:
        return ""
    lines = []
    for chosen_by in ("validation", "test"):
        best = max(fasttext, key=lambda row: (row[f"{chosen_by}_accuracy"], -row["train_s"]))
        lines.append(
            f"fastText's best setting on {chosen_by}: {best['system']} ({best[f'{chosen_by}_accuracy']:.4f}), test "
            f"{best['test_accuracy']:.4f} in {best['train_s']:.1f} s"
        )
        for row in rows:
            if "validation_accuracy" not in row:
                verdict = "faster" if row["train_s"] <= best["train_s"] else "slower"
                lines.append(f"  {row['system']}: test {row['test_accuracy']:.4f} in {row['train_s']:.1f} s, {verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="THUCNews folder (train/dev/test.txt)")
    parser.add_argument("--fasttext-python", help="a Python that imports fasttext (default: a venv made here)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--recipes", default="thucnews-wide-mlp-fast", help="comma-separated shipped recipes to run")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="override for hfnlp's runs")
    parser.add_argument("--skip-fasttext", action="store_true", help="only hfnlp (fastText's figures from a past run)")
    args = parser.parse_args()
    if not (args.data / "train.txt").exists():
        raise SystemExit(f"{args.data}: no train.txt; give --data the THUCNews folder")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = OUTPUT_ROOT / stamp
    work.mkdir(parents=True)
    rows = []
    if not args.skip_fasttext:
        python = fasttext_python(args.fasttext_python)
        for split in ("train", "dev", "test"):
            fasttext_format(args.data / f"{split}.txt", work / f"{split}.ft")
        rows += run_fasttext(python, work, args.threads)
    rows += hfnlp_runs(args.data, work, args.threads, [r for r in args.recipes.split(",") if r], args.overrides)
    (OUTPUT_ROOT / f"bench-{stamp}.json").write_text(json.dumps(rows, indent=2))
    print(f"\n{table(rows)}\n\n{comparison(rows)}\n\nraw: {OUTPUT_ROOT / f'bench-{stamp}.json'}")


if __name__ == "__main__":
    main()
