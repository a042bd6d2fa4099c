"""scripts/bench_panel.py without training: the table, the gaps, the baseline on a tiny generated data set."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from tests.conftest import make_sentiment_rows

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_panel.py"


@pytest.fixture(scope="module")
def panel():
    spec = importlib.util.spec_from_file_location("bench_panel", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_panel"] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_panel", None)


def synthetic_rows() -> list[dict]:
    return [
        {"dataset": "waimai", "system": "auto: wide-mlp", "kind": "auto", "status": "ok", "test_accuracy": 0.9012}
        | {"macro_f1": 0.8899, "wall_s": 301.4, "peak_mib": 1534.2, "same_split": True},
        {"dataset": "waimai", "system": "recipe: waimai-textcnn", "kind": "recipe", "status": "ok"}
        | {"test_accuracy": 0.8801, "macro_f1": 0.87, "wall_s": 120.0, "peak_mib": 900.0, "same_split": False},
        {"dataset": "waimai", "system": "recipe: waimai-bilstm", "kind": "recipe", "status": "failed"}
        | {"log": "runs/x/logs/waimai-bilstm.log", "wall_s": 3.0, "peak_mib": 200.0},
        {"dataset": "waimai", "system": "baseline: tfidf char 1-3 + LinearSVC", "kind": "baseline", "status": "ok"}
        | {"test_accuracy": 0.8950, "macro_f1": 0.8811, "wall_s": 12.2, "peak_mib": 410.0},
        {"dataset": "imdb", "system": "auto: text-cnn", "kind": "auto", "status": "ok", "test_accuracy": 0.85}
        | {"macro_f1": 0.85, "wall_s": 10.0, "peak_mib": 10.0},
        {"dataset": "imdb", "system": "baseline", "kind": "baseline", "status": "n/a", "error": "no split"},
    ]


def test_gap_points(panel):
    assert panel.gap_points(0.9012, 0.8950) == pytest.approx(0.62)
    assert panel.gap_points(0.8801, 0.8950) == pytest.approx(-1.49)
    assert panel.gap_points(0.5, 0.5) == 0


def test_gaps_are_per_data_set_and_only_against_a_scored_baseline(panel):
    rows = panel.add_gaps(synthetic_rows())
    gaps = {row["system"]: row["gap_points"] for row in rows if row["dataset"] == "waimai"}
    assert gaps["auto: wide-mlp"] == pytest.approx(0.62)
    assert gaps["recipe: waimai-textcnn"] == pytest.approx(-1.49)
    assert gaps["recipe: waimai-bilstm"] is None  # failed
    assert gaps["baseline: tfidf char 1-3 + LinearSVC"] is None  # the reference itself
    assert rows[4]["gap_points"] is None  # imdb: the baseline is n/a


def test_table(panel):
    table = panel.format_table(panel.add_gaps(synthetic_rows()))
    lines = table.splitlines()
    assert lines[0] == "| " + " | ".join(panel.COLUMNS) + " |"
    assert len(lines) == 2 + 6
    assert lines[2] == "| waimai | auto: wide-mlp | 0.9012 | 0.8899 | +0.62 | 301 | 1534 |"
    assert (
        lines[3] == f"| waimai | recipe: waimai-textcnn | 0.8801 | 0.8700 | -1.49 {panel.DIFFERENT_SPLIT} | 120 | 900 |"
    )
    assert lines[4] == "| waimai | recipe: waimai-bilstm | FAILED (runs/x/logs/waimai-bilstm.log) |  |  | 3 | 200 |"
    assert lines[5] == "| waimai | baseline: tfidf char 1-3 + LinearSVC | 0.8950 | 0.8811 | (reference) | 12 | 410 |"
    assert lines[6] == "| imdb | auto: text-cnn | 0.8500 | 0.8500 |  | 10 | 10 |"
    assert lines[7] == "| imdb | baseline | n/a (no split) |  |  |  |  |"
    assert all(line.count("|") == len(panel.COLUMNS) + 1 for line in lines)


def test_candidates_and_whole_panel(panel):
    candidates = [
        {"name": "wide-mlp", "validation_metric": "accuracy", "validation": 0.91234, "wall_time_s": 61.6}
        | {"status": "trained"},
        {"name": "bilstm", "status": "skipped", "why": "time budget"},
    ]
    text = panel.format_candidates("waimai", candidates, "wide-mlp")
    assert "| wide-mlp (chosen) | 0.9123 (accuracy) | 62 | trained |" in text
    assert "| bilstm |  |  | skipped time budget |" in text
    rows = panel.add_gaps(synthetic_rows())
    entry = {"rows": rows[:4], "candidates": candidates, "chosen": "wide-mlp", "split_source": "the auto run's"}
    entry["baselines"] = [
        {"dataset": "waimai", "config": "tfidf word 1-2 + LinearSVC", "status": "failed", "log": "l.log", "wall_s": 1}
    ]
    document = panel.format_panel({"started": "now", "command": "c", "limit_rows": 5, "datasets": {"waimai": entry}})
    assert "not a benchmark" in document
    assert "Auto mode candidates on waimai" in document
    assert "| waimai | tfidf word 1-2 + LinearSVC | FAILED (l.log) |" in document


def tiny_splits(rows_per_split: dict[str, int]) -> DatasetDict:
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    splits = {}
    for seed, (split, count) in enumerate(rows_per_split.items()):
        rows = make_sentiment_rows(count, seed=seed)
        splits[split] = Dataset.from_dict(
            {"text": [text for text, _ in rows], "label": [int(label == "positive") for _, label in rows]},
            features=features,
        )
    return DatasetDict(splits)


@pytest.mark.parametrize(("analyzer", "ngram_range"), [("word", (1, 2)), ("char_wb", (1, 5)), ("char", (1, 3))])
def test_baseline_learns_a_tiny_generated_data_set(panel, analyzer, ngram_range):
    splits = tiny_splits({"train": 300, "validation": 60, "test": 60})
    result = panel.fit_baseline(splits, analyzer, ngram_range)
    assert result["config"] == f"tfidf {analyzer} {ngram_range[0]}-{ngram_range[1]} + LinearSVC"
    assert result["train_rows"] == 300
    assert result["test_accuracy"] > 0.8  # the sentiment words decide the label
    assert result["validation_accuracy"] > 0.8
    assert 0 < result["test_macro_f1"] <= 1
    assert result["fit_s"] >= 0


def test_best_baseline_is_the_best_on_test(panel):
    results = [
        {"config": "a", "test_accuracy": 0.8, "validation_accuracy": 0.95},
        {"config": "b", "test_accuracy": 0.9, "validation_accuracy": 0.85},
        {"config": "c", "status": "failed"},
    ]
    assert panel.best_on_test(results)["config"] == "b"
    assert panel.best_on_test([{"config": "c", "status": "failed"}]) is None


def test_subsample_and_split_digest(panel):
    splits = tiny_splits({"train": 50, "validation": 10, "test": 10})
    small = panel.subsample_train(splits, 20, seed=42)
    assert len(small["train"]) == 20 and len(small["test"]) == 10
    assert set(small["train"]["text"]) <= set(splits["train"]["text"])
    assert panel.subsample_train(splits, 20, seed=42)["train"]["text"] == small["train"]["text"]
    assert panel.subsample_train(splits, None, seed=42) is splits
    shuffled = DatasetDict({name: split.shuffle(seed=1) for name, split in splits.items()})
    assert panel.split_digest(shuffled) == panel.split_digest(splits)  # order does not matter
    assert panel.split_digest(small) != panel.split_digest(splits)


def test_cjk_configs(panel):
    assert panel.is_cjk(["很快，好吃，味道足，量大", "没有送水"])
    assert not panel.is_cjk(["the food was great", "cold and late"])
    assert panel.CJK_CONFIG in panel.baseline_configs(True)
    assert panel.CJK_CONFIG not in panel.baseline_configs(False)


def test_the_panel_process_stays_light():
    """A child's peak memory includes its parent's: the script must not import hfnlp or datasets at load time."""
    import subprocess

    code = f"import runpy, sys; runpy.run_path({str(SCRIPT)!r}); print(sorted(m for m in sys.modules))"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'hfnlp'" not in modules and "'datasets'" not in modules and "'sklearn'" not in modules
