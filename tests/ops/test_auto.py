"""The auto mode's orchestrator (:mod:`hfnlp.ops.auto`): the choice by validation only, the time budget, failures,
``--resume`` and the output folder; training is replaced by a fake that writes a finished run folder, so these
tests take a second each (``tests/commands/test_train_data.py`` trains for real)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import hfnlp.profile
from hfnlp.errors import DataError
from hfnlp.ops import auto
from hfnlp.ops.auto import AutoOptions, run_auto
from hfnlp.ops.auto_candidates import Candidate, record_trained
from hfnlp.ops.selection import best_epoch, choose_candidate, validation_score
from hfnlp.ops.session import TrainOptions
from tests.conftest import make_sentiment_rows, write_csv


def fake_run(
    folder: Path,
    *,
    validation: float | None,
    test: float,
    metric: str = "accuracy",
    logged: list[dict[str, float]] | None = None,
) -> Path:
    """A finished run folder as far as the choice reads it: recipe, metrics.json, optionally a checkpoint's state."""
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"training": {"metric_for_best_model": metric}}))
    metrics = {"test": {"accuracy": test, "macro_f1": test}, "best_validation_metric": validation, "wall_time_s": 1.0}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if logged is not None:
        (folder / "checkpoint-4").mkdir()
        (folder / "checkpoint-4" / "trainer_state.json").write_text(json.dumps({"log_history": logged}))
    return folder


def test_the_choice_reads_validation_scores_never_test_scores(tmp_path):
    # a: better on test, worse on validation; b: the reverse. The validation winner is chosen.
    runs = {
        "a": fake_run(tmp_path / "a", validation=0.80, test=0.95),
        "b": fake_run(tmp_path / "b", validation=0.90, test=0.70),
    }
    assert choose_candidate(runs) == ("b", "accuracy", 0.90)
    assert choose_candidate(dict(reversed(runs.items()))) == ("b", "accuracy", 0.90)
    # A tie goes to the earlier (more promising) candidate; a run without a validation score is passed over.
    tie = fake_run(tmp_path / "tie", validation=0.90, test=0.99)
    none = fake_run(tmp_path / "none", validation=None, test=1.0)
    assert choose_candidate({"b": runs["b"], "tie": tie, "none": none}) == ("b", "accuracy", 0.90)
    assert choose_candidate({"none": none}) is None
    assert choose_candidate({}) is None


def test_every_run_is_scored_on_the_first_runs_metric_from_its_logged_evaluations(tmp_path):
    first = fake_run(tmp_path / "first", validation=0.80, test=0.80)
    # Its own metric is macro-F1; its accuracy comes from the evaluations in its newest checkpoint's trainer state.
    logged = [
        {"eval_accuracy": 0.70, "eval_macro_f1": 0.99, "test_accuracy": 1.0},
        {"eval_accuracy": 0.85},
        {"loss": 1},
    ]
    other = fake_run(tmp_path / "other", validation=0.99, test=0.99, metric="macro_f1", logged=logged)
    assert validation_score(other) == ("macro_f1", 0.99)
    assert validation_score(other, "accuracy") == ("accuracy", 0.85)
    assert choose_candidate({"first": first, "other": other}) == ("other", "accuracy", 0.85)
    assert choose_candidate({"first": first, "other": other}, "macro_f1") == ("other", "macro_f1", 0.99)
    # A loss: lower is better.
    lossy = [{"eval_loss": 0.3}, {"eval_loss": 0.2}, {"eval_loss": 0.4}]
    low = fake_run(tmp_path / "low", validation=0.2, test=0.1, metric="loss", logged=lossy)
    high = fake_run(tmp_path / "high", validation=0.5, test=0.9, metric="eval_loss")
    assert choose_candidate({"high": high, "low": low}) == ("low", "loss", 0.2)


def test_best_epoch_is_the_epoch_trainer_kept_as_best(tmp_path):
    logged = [
        {"epoch": 1.0, "eval_accuracy": 0.7, "eval_loss": 0.9},
        {"epoch": 1.5, "loss": 0.3},
        {"epoch": 2.0, "eval_accuracy": 0.8, "eval_loss": 0.7},
        {"epoch": 3.0, "eval_accuracy": 0.8, "eval_loss": 0.5},  # equal: Trainer keeps the first
    ]
    assert best_epoch(fake_run(tmp_path / "acc", validation=0.8, test=0.1, logged=logged)) == 2.0
    assert best_epoch(fake_run(tmp_path / "loss", validation=0.5, test=0.1, metric="loss", logged=logged)) == 3.0
    assert best_epoch(fake_run(tmp_path / "none", validation=None, test=0.1)) is None


# ----- the orchestrator, with a fake training -------------------------------------------------------------------


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", make_sentiment_rows(200))


@pytest.fixture
def two_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates ``a`` and ``b``, both the first real candidate's recipe (whatever candidate_recipes offers)."""
    real = hfnlp.profile.candidate_recipes

    def candidates(profile: Any, data: Any, *, output_dir: str, **kwargs: Any) -> dict[str, Any]:
        first = next(iter(real(profile, data, output_dir=output_dir, **kwargs).values()))
        return {
            name: dataclasses.replace(first, recipe={**first.recipe, "output_dir": f"{output_dir}/candidates/{name}"})
            for name in ("a", "b")
        }

    monkeypatch.setattr(hfnlp.profile, "candidate_recipes", candidates)


@pytest.fixture
def fake_train(monkeypatch: pytest.MonkeyPatch):
    """Replace training: ``fake_train(name=dict(validation=..., test=..., wall=..., error=...))``; returns the
    list of (candidate folder name, TrainOptions) trained, in order."""
    calls: list[tuple[str, TrainOptions]] = []

    def install(**outcomes: dict[str, Any]) -> list[tuple[str, TrainOptions]]:
        def train(recipe: Any, options: TrainOptions) -> dict[str, Any]:
            run_dir = Path(options.session_recipe(recipe).output_dir)
            outcome = outcomes[run_dir.name.split("-limit-")[0]]
            calls.append((run_dir.name, options))
            if "error" in outcome:
                raise outcome["error"]
            run_dir.mkdir(parents=True, exist_ok=True)
            recipe.save(run_dir / "recipe.yaml")
            summary = {
                "test": {"accuracy": outcome["test"]},
                "best_validation_metric": outcome["validation"],
                "wall_time_s": outcome.get("wall", 1.0),
                **({"seconds_per_epoch": 100.0, "train_runtime_s": 0.5} if "logged" in outcome else {}),
            }
            (run_dir / "metrics.json").write_text(json.dumps(summary))
            if "logged" in outcome:  # what the refit reads: the best epoch, from the checkpoint's trainer state
                (run_dir / "checkpoint-4").mkdir(exist_ok=True)
                state = {"log_history": outcome["logged"]}
                (run_dir / "checkpoint-4" / "trainer_state.json").write_text(json.dumps(state))
            (run_dir / "model").mkdir(exist_ok=True)
            (run_dir / "model" / "config.json").write_text(json.dumps({"run": run_dir.name}))
            return summary

        monkeypatch.setattr(auto, "train", train)
        # Fake runs hold no weights to combine; tests/commands/test_train_data.py builds a real ensemble.
        monkeypatch.setattr(auto, "_ensemble", lambda *args, **kwargs: None)
        return calls

    return install


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_the_best_validation_candidate_is_put_in_place(tmp_path, data_csv, two_candidates, fake_train, capsys):
    calls = fake_train(a=dict(validation=0.7, test=0.99), b=dict(validation=0.8, test=0.5))
    out = tmp_path / "auto"
    summary = run_auto(AutoOptions(str(data_csv), output_dir=str(out)))
    assert [name for name, _ in calls] == ["a", "b"]
    record = read(out / "candidates.json")
    assert record["chosen"] == "b"
    assert [(c["name"], c["status"], c["validation"], c["test_accuracy"]) for c in record["candidates"]] == [
        ("a", "trained", 0.7, 0.99),
        ("b", "trained", 0.8, 0.5),
    ]
    assert read(out / "model" / "config.json") == {"run": "b"}
    assert (out / "recipe.yaml").read_text() == (out / "candidates" / "b" / "recipe.yaml").read_text()
    metrics = read(out / "metrics.json")
    assert metrics == summary and metrics["test"] == {"accuracy": 0.5}
    assert metrics["chosen"]["name"] == "b" and metrics["candidates"] == record["candidates"]
    assert {"a.yaml", "b.yaml"} <= {p.name for p in (out / "candidates").iterdir()}
    assert "label_column: 'label' (guessed" in (out / "profile.txt").read_text()
    captured = capsys.readouterr()
    assert "text_column: 'text' (guessed" in captured.err
    assert "b *" in captured.out and "chosen: b" in captured.out
    assert not list(out.glob("*.tmp-*"))


def test_the_chosen_recipe_is_retrained_on_train_and_validation_for_its_best_epochs(
    tmp_path, data_csv, two_candidates, fake_train
):
    logged = [{"epoch": 1.0, "eval_accuracy": 0.6}, {"epoch": 2.0, "eval_accuracy": 0.8}]
    outcome = dict(validation=0.8, test=0.7, logged=logged)
    calls = fake_train(a=outcome, b=dict(outcome, validation=0.6), **{"a-refit": dict(validation=None, test=0.75)})
    out = tmp_path / "auto"
    summary = run_auto(AutoOptions(str(data_csv), output_dir=str(out)))
    assert [name for name, _ in calls] == ["a", "b", "a-refit"]
    refit = yaml.safe_load((out / "candidates" / "a-refit" / "recipe.yaml").read_text())
    assert refit["data"]["train_on_validation"] is True
    assert refit["training"]["num_train_epochs"] == 2.0 and refit["training"]["eval_strategy"] == "no"
    assert summary["refit"]["done"] and summary["refit"]["epochs"] == {"a": 2.0}
    assert summary["chosen"]["name"] == "a" and summary["chosen"]["validation"] == 0.8
    assert summary["test"] == {"accuracy": 0.75} and read(out / "model" / "config.json") == {"run": "a-refit"}
    assert read(out / "candidates.json")["candidates"][-1]["status"] == "refit"

    # The estimate (2 epochs × 100 s × the rows' growth) does not fit a 60-second budget: the chosen model stays.
    calls.clear()
    summary = run_auto(AutoOptions(str(data_csv), output_dir=str(tmp_path / "tight"), time_budget_s=60))
    assert [name for name, _ in calls] == ["a", "b"] and not summary["refit"]["done"]
    assert summary["refit"]["why"].startswith("skipped, time budget") and summary["test"] == {"accuracy": 0.7}
    assert not run_auto(AutoOptions(str(data_csv), output_dir=str(tmp_path / "no"), refit=False))["refit"]["done"]


def test_the_time_budget_skips_later_candidates_but_never_the_first(tmp_path, data_csv, two_candidates, fake_train):
    calls = fake_train(a=dict(validation=0.7, test=0.7, wall=600.0), b=dict(validation=0.9, test=0.9))
    out = tmp_path / "auto"
    run_auto(AutoOptions(str(data_csv), output_dir=str(out), time_budget_s=60))  # the first is trained regardless
    assert [name for name, _ in calls] == ["a"]
    a, b = read(out / "candidates.json")["candidates"]
    assert a["status"] == "trained" and b["status"] == "skipped" and "time budget" in b["why"]
    assert read(out / "metrics.json")["chosen"]["name"] == "a"

    calls.clear()  # rerun with room for b: a is kept, b is trained and wins
    run_auto(AutoOptions(str(data_csv), output_dir=str(out), time_budget_s=3600, train=TrainOptions(resume=True)))
    assert [name for name, _ in calls] == ["b"] and calls[0][1].resume is False  # b's folder did not exist
    assert read(out / "model" / "config.json") == {"run": "b"}
    assert [c["status"] for c in read(out / "candidates.json")["candidates"]] == ["trained", "trained"]


def test_a_buggy_candidate_is_recorded_and_the_others_go_on(tmp_path, data_csv, two_candidates, fake_train):
    fake_train(a=dict(error=RuntimeError("a bug\nover two lines")), b=dict(validation=0.6, test=0.6))
    out = tmp_path / "auto"
    run_auto(AutoOptions(str(data_csv), output_dir=str(out)))
    a, b = read(out / "candidates.json")["candidates"]
    assert (a["status"], a["why"]) == ("failed", "RuntimeError: a bug over two lines")
    assert b["status"] == "trained" and read(out / "metrics.json")["chosen"]["name"] == "b"


def test_a_bug_in_the_only_candidate_is_raised(tmp_path, data_csv, two_candidates, fake_train):
    fake_train(a=dict(error=RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        run_auto(AutoOptions(str(data_csv), output_dir=str(tmp_path / "auto"), candidates=["a"]))


def test_a_users_mistake_in_a_candidate_stops_everything(tmp_path, data_csv, two_candidates, fake_train):
    calls = fake_train(a=dict(error=DataError("row 3: bad")), b=dict(validation=0.6, test=0.6))
    out = tmp_path / "auto"
    with pytest.raises(DataError, match="row 3"):
        run_auto(AutoOptions(str(data_csv), output_dir=str(out)))
    assert [name for name, _ in calls] == ["a"] and not (out / "model").exists()
    assert read(out / "candidates.json")["candidates"][0]["why"] == "DataError: row 3: bad"


def test_resume_keeps_finished_candidates_and_trains_the_interrupted_ones_again(
    tmp_path, data_csv, two_candidates, fake_train
):
    """A candidate's checkpoints hold its weights only (``save_only_model``): an interrupted one cannot be resumed,
    so its folder is cleared and it is trained again."""
    calls = fake_train(a=dict(validation=0.9, test=0.9), b=dict(error=RuntimeError("killed")))
    out = tmp_path / "auto"
    run_auto(AutoOptions(str(data_csv), output_dir=str(out)))
    (out / "candidates" / "b").mkdir()  # what the interrupted run of b left
    (out / "candidates" / "b" / "checkpoint-2").mkdir()
    from hfnlp.errors import HfnlpError

    with pytest.raises(HfnlpError, match="pass --resume"):  # never overwritten silently
        run_auto(AutoOptions(str(data_csv), output_dir=str(out)))
    calls.clear()
    fake_train(a=dict(validation=0.9, test=0.9), b=dict(validation=0.95, test=0.1))
    run_auto(AutoOptions(str(data_csv), output_dir=str(out), train=TrainOptions(resume=True)))
    assert [(name, options.resume) for name, options in calls] == [("b", False)]
    assert not (out / "candidates" / "b" / "checkpoint-2").exists()
    a, b = read(out / "candidates.json")["candidates"]
    assert a["why"] == "finished earlier: kept (--resume)" and b["status"] == "trained"
    assert read(out / "model" / "config.json") == {"run": "b"}  # the previous model/ was replaced


def test_limit_train_writes_beside_the_real_folder(tmp_path, data_csv, two_candidates, fake_train):
    calls = fake_train(a=dict(validation=0.9, test=0.9), b=dict(validation=0.8, test=0.8))
    out = tmp_path / "auto"
    run_auto(AutoOptions(str(data_csv), output_dir=str(out), train=TrainOptions(limit_train="50")))
    assert not out.exists() and [name for name, _ in calls] == ["a-limit-50", "b-limit-50"]
    assert read(tmp_path / "auto-limit-50" / "model" / "config.json") == {"run": "a-limit-50"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(task="token-classification"), "supports text-classification"),
        (dict(candidates=["nope"]), "--candidates nope: unknown; the candidates are a, b"),
        (dict(overrides=["output_dir=x"]), "choose the folder with --output-dir"),
        (dict(overrides=["training.eval_strategy=no", "training.early_stopping_patience=null"]), "no validation"),
        (dict(overrides=["training.learnig_rate=1"]), "training.learnig_rate"),
    ],
)
def test_mistakes_are_refused_before_any_training(tmp_path, data_csv, two_candidates, fake_train, options, message):
    from hfnlp.errors import HfnlpError

    calls = fake_train()
    with pytest.raises(HfnlpError, match=message.replace(".", r"\.")):
        run_auto(AutoOptions(str(data_csv), output_dir=str(tmp_path / "auto"), **options))
    assert calls == [] and not (tmp_path / "auto").exists()


def test_a_tie_with_the_ensemble_goes_to_the_ensemble(tmp_path, data_csv, two_candidates, fake_train, monkeypatch):
    fake_train(
        a=dict(validation=0.8, test=0.8), b=dict(validation=0.7, test=0.7), ensemble=dict(validation=0.8, test=0.9)
    )

    def ensemble(candidates: list[Candidate], output_dir: Path, options: AutoOptions) -> Candidate:
        recipe = copy.deepcopy(candidates[0].recipe)
        recipe.output_dir = str(output_dir / "candidates" / "ensemble")
        candidate = Candidate("ensemble", recipe, Path(recipe.output_dir), "")
        record_trained(candidate, auto.train(recipe, options.train), "accuracy")
        return candidate

    monkeypatch.setattr(auto, "_ensemble", ensemble)
    run_auto(AutoOptions(str(data_csv), output_dir=str(tmp_path / "auto"), refit=False))  # the fake has no members
    assert read(tmp_path / "auto" / "candidates.json")["chosen"] == "ensemble"  # as a tie between subsets: the larger
