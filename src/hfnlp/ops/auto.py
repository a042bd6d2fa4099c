"""The auto mode, ``hfnlp train --data FILE``: profile the data, train the candidate recipes the profile suggests,
keep the one with the best validation score.

The output folder holds::

    profile.txt                 the guessed columns (and why), the profile and its warnings
    candidates/<name>.yaml      each candidate's recipe, every value commented with why it was chosen
    candidates/<name>/          each candidate's run folder (an ordinary ``hfnlp train`` run)
    candidates.json             every candidate: model type, validation score, test accuracy, wall time, status
    candidates/<name>-refit/    the chosen candidate retrained on train + validation (see below)
    model/  recipe.yaml         the final model folder and its recipe
    metrics.json                the final model's metrics, plus ``candidates``, ``chosen`` and ``refit``

The choice reads validation scores only; test scores are reported, never compared. Once chosen, the recipe is
trained again on train + validation for the epochs that were best on validation (members of an ensemble each, then
combined with the weights chosen before): the usual last step of model selection (Hastie et al., *Elements of
Statistical Learning* §7.10; scikit-learn's ``refit``), worth most on small data — on THUCNews the 10,000 validation
titles added to the 33,590 training ones raised test accuracy from 0.906 to 0.911. It is skipped when the time
budget cannot hold it (estimated from the chosen runs' seconds per epoch) and with ``refit=False``
(``--no-refit``), which keeps the model whose validation score was measured. Candidates are trained one after the
other in this process (:func:`hfnlp.ops.session.train`); with ``--resume`` a finished one is kept and an unfinished
one continues from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hfnlp.errors import HfnlpError
from hfnlp.ops.auto_candidates import Candidate, print_table, record_trained, write_candidates
from hfnlp.ops.selection import best_epoch, choose_candidate, is_number, read_json
from hfnlp.ops.session import TrainOptions, train
from hfnlp.recipe import Recipe, apply_overrides
from hfnlp.tasks import load_recipe, recipe_from_dict
from hfnlp.training.atomic import atomic_path, copy_file, write_text
from hfnlp.training.run_folder import METRICS, MODEL_DIR, RECIPE, RunFolder

logger = logging.getLogger(__name__)

SUPPORTED_TASKS = ("text-classification",)
PROFILE = "profile.txt"
CANDIDATES_DIR = "candidates"
ENSEMBLE = "ensemble"
REFIT_SUFFIX = "-refit"


@dataclass(frozen=True)
class AutoOptions:
    """What ``hfnlp train --data`` was asked: the data and how to read it, and how to choose.

    ``data_options`` are the keyword arguments of :func:`hfnlp.profile.guess_data_section` besides the train file.
    ``output_dir`` defaults to ``runs/<data name>-auto``; ``candidates`` (names) to every candidate, in the order
    of :func:`hfnlp.profile.candidate_recipes`; ``overrides`` (``key=value``) apply to every candidate's recipe.
    ``train`` carries ``--resume``, the dashboard and ``--limit-train`` to each candidate's session. ``refit``
    retrains the chosen recipe on train + validation within the time budget (not in a ``--limit-train`` run).
    """

    data: str
    data_options: Mapping[str, Any] = field(default_factory=dict)
    task: str = "text-classification"
    output_dir: str | None = None
    seed: int = 42
    time_budget_s: float | None = None
    candidates: Sequence[str] | None = None
    overrides: Sequence[str] = ()
    train: TrainOptions = field(default_factory=TrainOptions)
    refit: bool = True


def default_output_dir(data: str) -> str:
    """``runs/<data name>-auto``: the train file's name, or its folder's when the file names a split (train.txt)."""
    from hfnlp.data.reading import SPLIT_ALIASES

    source = Path(data)
    stem = source.parent.name if source.stem.lower() in SPLIT_ALIASES and source.parent.name else source.stem
    return f"runs/{stem or 'data'}-auto"


def auto_output_dir(options: AutoOptions) -> Path:
    """The folder the auto run writes: ``output_dir`` (default :func:`default_output_dir`), with ``-limit-<N>``
    for a ``--limit-train`` run, which never occupies the real run's folder (as ``hfnlp train RECIPE``'s)."""
    output_dir = Path(options.output_dir or default_output_dir(options.data))
    limit = options.train.limit
    return output_dir.with_name(f"{output_dir.name}-limit-{limit.label}") if limit is not None else output_dir


def run_auto(options: AutoOptions) -> dict[str, Any]:
    """Profile ``options.data``, train its candidates, put the best (by validation) in place; return the summary
    written to ``<output_dir>/metrics.json``. A user's mistake (:class:`HfnlpError`) in any candidate stops
    everything; a candidate that fails with a bug is recorded as failed and the others go on (unless it is the
    only one)."""
    started = time.monotonic()
    if options.task not in SUPPORTED_TASKS:
        raise HfnlpError(f"--task {options.task!r}: the auto mode supports {', '.join(SUPPORTED_TASKS)}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise HfnlpError("hfnlp train --data runs in one process; to train under accelerate launch, give a RECIPE")
    for override in options.overrides:
        if override.partition("=")[0].strip() == "output_dir":
            raise HfnlpError(f"--set {override!r}: with --data, choose the folder with --output-dir")
    output_dir = auto_output_dir(options)  # also refuses a malformed --limit-train before any work

    section, guessed, profile, lines = _profile(options)
    candidates, warnings = _candidates(options, profile, section, guessed, output_dir)
    lines += [f"warning: {warning}" for warning in warnings]
    for line in lines:
        print(line, file=sys.stderr)

    with RunFolder(output_dir).locked():  # one auto run per folder at a time
        _check_fresh(candidates, options.train.resume, output_dir)
        _remove_leftovers(output_dir)
        write_text(output_dir / PROFILE, "\n".join(lines) + "\n")
        _train_all(candidates, options, output_dir, started)
        ensemble = _ensemble(candidates, output_dir, options)
        if ensemble is not None:
            candidates.append(ensemble)
            write_candidates(output_dir, candidates, None)
        # The ensemble first: a tie goes to it, as a tie between member subsets goes to the larger one (averaging
        # more members lowers variance at the same validation score).
        ordered = sorted(candidates, key=lambda c: c.name != ENSEMBLE)
        trained = {c.name: c.run_dir for c in ordered if c.status == "trained"}
        chosen = choose_candidate(trained, _choice_metric(candidates))
        winner = _winner(candidates, chosen)
        write_candidates(output_dir, candidates, winner)
        refit = _refit(winner, candidates, options, output_dir, started, _growth(profile, section))
        if refit.candidate is not None:
            candidates.append(refit.candidate)
            write_candidates(output_dir, candidates, winner)
        print_table(candidates, winner)
        return _install(output_dir, candidates, winner, refit)


# ----- the steps of run_auto ----------------------------------------------------------------------------------


def _profile(options: AutoOptions) -> tuple[dict[str, Any], dict[str, str], Any, list[str]]:
    """Guess the data section, profile the data; the lines that say what was guessed and found."""
    from hfnlp.data.text import TextDataConfig
    from hfnlp.profile import guess_data_section, profile_text_data

    section, guessed = guess_data_section(options.data, **options.data_options)
    profile = profile_text_data(TextDataConfig(**section), seed=options.seed)
    notes = [
        f"{key.removeprefix('data.')}: {section.get(key.removeprefix('data.'))!r} ({why})"
        for key, why in dict(guessed).items()
    ]
    return section, dict(guessed), profile, [*notes, f"profiled in {profile.seconds:.1f} s", *profile.describe()]


def _candidates(
    options: AutoOptions, profile: Any, section: dict[str, Any], guessed: dict[str, str], output_dir: Path
) -> tuple[list[Candidate], list[str]]:
    """The candidates asked for, each recipe with the overrides applied and validated (before any work), and the
    drafts' warnings (once each)."""
    from hfnlp.profile import candidate_recipes

    drafts = candidate_recipes(profile, section, output_dir=str(output_dir), seed=options.seed, guessed=guessed)
    names = list(drafts) if options.candidates is None else list(dict.fromkeys(options.candidates))
    unknown = [name for name in names if name not in drafts]
    if unknown or not names:
        raise HfnlpError(
            f"--candidates {','.join(unknown) or '(none)'}: "
            f"{'unknown; ' if unknown else ''}the candidates are {', '.join(drafts)}"
        )
    candidates: list[Candidate] = []
    warnings: list[str] = []
    for name in names:
        draft = drafts[name]
        raw = apply_overrides(draft.recipe, list(options.overrides))
        recipe = recipe_from_dict(raw, source=f"candidate {name}")
        if len(names) > 1 and recipe.training.eval_strategy == "no":
            raise HfnlpError(
                f"candidate {name}: training.eval_strategy is 'no', so it has no validation score to be chosen by; "
                "let it evaluate, or train one candidate with --candidates NAME"
            )
        run_dir = Path(options.train.session_recipe(recipe).output_dir)
        candidates.append(Candidate(name, recipe, run_dir, _commented_recipe(draft, raw, options.overrides)))
        warnings += [warning for warning in draft.warnings if warning not in warnings]
    return candidates, warnings


def _commented_recipe(draft: Any, raw: dict[str, Any], overrides: Sequence[str]) -> str:
    """The draft's commented YAML with the overrides applied (their comment says so); plain YAML under the
    draft's header when a value cannot be written line by line."""
    if not overrides:
        return draft.to_yaml()
    why = dict(draft.why)
    for override in overrides:
        why[override.partition("=")[0].strip()] = f"--set {override}"
    header = [*draft.header, f"Overridden on the command line: {' '.join(f'--set {o}' for o in overrides)}"]
    edited = dataclasses.replace(draft, recipe=raw, why=why, header=header)
    text = edited.to_yaml()
    if yaml.safe_load(text) == raw:
        return text
    comments = "".join(f"# {line}\n" for line in header)
    return comments + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)


def _write_recipes(output_dir: Path, candidates: Sequence[Candidate]) -> None:
    (output_dir / CANDIDATES_DIR).mkdir(parents=True, exist_ok=True)
    for candidate in candidates:
        write_text(output_dir / CANDIDATES_DIR / f"{candidate.name}.yaml", candidate.yaml_text)


def _check_fresh(candidates: Sequence[Candidate], resume: bool, output_dir: Path) -> None:
    """Without ``--resume``, refuse a folder where a candidate (or a refit) already trained (before anything is
    written)."""
    if resume:
        return
    runs = [(c.name, c.run_dir) for c in candidates]
    runs += [(path.name, path) for path in sorted((output_dir / CANDIDATES_DIR).glob(f"*{REFIT_SUFFIX}"))]
    for name, run_dir in runs:
        folder = RunFolder(run_dir)
        if folder.checkpoint_steps() or folder.model_dir.exists():
            raise HfnlpError(
                f"{output_dir} already holds an auto run (candidate {name} in {run_dir}); pass "
                "--resume to complete it (finished candidates are kept), or choose another --output-dir"
            )


def _remove_leftovers(output_dir: Path) -> None:
    """What a killed auto run left of its atomic writes in the (locked) folder; a model folder renamed aside goes
    back when its place is empty."""
    for leftover in output_dir.glob("*.tmp-*"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    for aside in output_dir.glob(f"{MODEL_DIR}.old-*"):
        if (output_dir / MODEL_DIR).exists():
            shutil.rmtree(aside)
        else:
            aside.rename(output_dir / MODEL_DIR)


def _train_all(candidates: list[Candidate], options: AutoOptions, output_dir: Path, started: float) -> None:
    """Train the candidates in order, within the time budget (the first always), recording each."""
    _write_recipes(output_dir, candidates)
    budget = options.time_budget_s
    for index, candidate in enumerate(candidates):
        if options.train.resume and candidate.finished:
            record_trained(candidate, read_json(candidate.run_dir / METRICS), _choice_metric(candidates))
            candidate.why = "finished earlier: kept (--resume)"
            logger.info("candidate %s finished earlier: kept", candidate.name)
            write_candidates(output_dir, candidates, None)
            continue
        if budget is not None and index > 0:
            elapsed = time.monotonic() - started
            walls = [c.wall_time_s for c in candidates[:index] if c.wall_time_s is not None]
            estimate = sum(walls) / len(walls) if walls else 0.0
            if elapsed + estimate > budget:
                candidate.status = "skipped"
                candidate.why = (
                    f"time budget: {elapsed / 60:.1f} min elapsed + ~{estimate / 60:.1f} min estimated "
                    f"> {budget / 60:g} min"
                )
                logger.info("candidate %s skipped: %s", candidate.name, candidate.why)
                write_candidates(output_dir, candidates, None)
                continue
        try:
            _train_one(candidate, candidates, options)
        finally:  # also when a user's mistake stops everything: the record says which candidate and why
            write_candidates(output_dir, candidates, None)


def _train_one(candidate: Candidate, candidates: Sequence[Candidate], options: AutoOptions) -> None:
    logger.info(
        "training candidate %s (%s) in %s", candidate.name, candidate.recipe.model.get("type"), candidate.run_dir
    )
    resume = _resume_or_restart(candidate.run_dir, candidate.recipe, options.train.resume)
    train_options = dataclasses.replace(options.train, resume=resume)
    attempt = time.monotonic()
    try:
        summary = train(candidate.recipe, train_options)
    except HfnlpError as error:  # a user's mistake: it would fail every candidate the same way
        candidate.status, candidate.why = "failed", _one_line(error)
        raise
    except Exception as error:
        candidate.status, candidate.why = "failed", _one_line(error)
        candidate.wall_time_s = round(time.monotonic() - attempt, 2)
        if len(candidates) == 1:
            raise
        logger.error("candidate %s failed (a bug; the others go on): %s", candidate.name, candidate.why, exc_info=True)
        return
    record_trained(candidate, summary, _choice_metric(candidates))


def _resume_or_restart(run_dir: Path, recipe: Recipe, resume: bool) -> bool:
    """Whether to resume the unfinished run in ``run_dir`` (``--resume`` and a folder there), clearing the folder when
    it cannot be: a run whose checkpoints hold the weights only (``training.extra_args.save_only_model``, the
    candidates' default) is trained again from the start."""
    if not resume or not run_dir.exists():
        return False
    if not recipe.training.resumable_checkpoints:
        logger.info("%s was interrupted; its checkpoints hold the weights only: training it again", run_dir)
        shutil.rmtree(run_dir)
        return False
    return True


def _ensemble(candidates: Sequence[Candidate], output_dir: Path, options: AutoOptions) -> Candidate | None:
    """With two or more trained candidates, one more: their ensemble (:func:`hfnlp.ops.ensemble.build_ensemble`),
    judged on validation like the others. A debug run (``--limit-train``) builds none."""
    from hfnlp.ops.ensemble import build_ensemble

    members = [c for c in candidates if c.status == "trained"]
    if len(members) < 2 or options.train.limit is not None:
        return None
    run_dir = output_dir / CANDIDATES_DIR / ENSEMBLE
    member_dirs = [str(c.run_dir) for c in members]
    kept = read_json(run_dir / METRICS) if options.train.resume else {}
    if kept.get("members") == member_dirs and RunFolder(run_dir).finished:
        summary = kept
        logger.info("ensemble of %s built earlier: kept", ", ".join(c.name for c in members))
    else:
        logger.info("building the ensemble of %s in %s", ", ".join(c.name for c in members), run_dir)
        summary = build_ensemble(member_dirs, run_dir, metric=_choice_metric(candidates))
    text = (run_dir / RECIPE).read_text(encoding="utf-8")
    write_text(
        output_dir / CANDIDATES_DIR / f"{ENSEMBLE}.yaml", f"# Built by hfnlp train --data from {run_dir.parent}\n{text}"
    )
    candidate = Candidate(ENSEMBLE, load_recipe(run_dir / RECIPE), run_dir, text)
    record_trained(candidate, summary, _choice_metric(candidates))
    candidate.why = "members " + ", ".join(
        f"{c.name} ×{weight:g}" for c, weight in zip(members, summary["member_weights"], strict=True)
    )
    return candidate


@dataclass
class Refit:
    """What became of the refit: its candidate (``None`` when skipped) and why."""

    candidate: Candidate | None
    why: str
    epochs: dict[str, float] = field(default_factory=dict)  # member name → epochs retrained


def _refit(
    winner: Candidate,
    candidates: Sequence[Candidate],
    options: AutoOptions,
    output_dir: Path,
    started: float,
    growth: float,
) -> Refit:
    """Train the winner again on train + validation (an ensemble: each member, then combined with the weights
    chosen on validation), each run for the epochs of its best validation score; skipped when the time budget
    (estimated from the runs' seconds per epoch, scaled by ``growth``, the train rows' growth) cannot hold it."""
    if not options.refit:
        return Refit(None, "not asked (--no-refit)")
    if options.train.limit is not None:
        return Refit(None, "not in a --limit-train run")
    members = _weighted_members(winner, candidates)
    plan: list[tuple[Candidate, float, float]] = []  # member, epochs, estimated seconds
    for member, _ in members:
        epochs = best_epoch(member.run_dir)
        metrics = read_json(member.run_dir / METRICS)
        per_epoch, wall, fit = (metrics.get(k) for k in ("seconds_per_epoch", "wall_time_s", "train_runtime_s"))
        if epochs is None or not all(is_number(v) for v in (per_epoch, wall, fit)):
            return Refit(None, f"{member.name} has no best validation epoch or timing to retrain from")
        plan.append((member, epochs, per_epoch * epochs * growth + max(wall - fit, 0.0)))
    estimate = sum(seconds for _, _, seconds in plan)
    elapsed = time.monotonic() - started
    if options.time_budget_s is not None and elapsed + estimate > options.time_budget_s:
        why = (
            f"skipped, time budget: {elapsed / 60:.1f} min elapsed + ~{estimate / 60:.1f} min estimated "
            f"> {options.time_budget_s / 60:g} min"
        )
        logger.info("refit of %s %s", winner.name, why)
        return Refit(None, why)
    refit_dirs = []
    for member, epochs, _ in plan:
        run_dir = output_dir / CANDIDATES_DIR / f"{member.name}{REFIT_SUFFIX}"
        refit_dirs.append(run_dir)
        if options.train.resume and RunFolder(run_dir).finished:
            logger.info("refit of %s finished earlier: kept", member.name)
            continue
        logger.info("retraining %s on train + validation for %g epochs in %s", member.name, epochs, run_dir)
        recipe = _refit_recipe(member.recipe, epochs, run_dir)
        train(
            recipe, dataclasses.replace(options.train, resume=_resume_or_restart(run_dir, recipe, options.train.resume))
        )
    run_dir = refit_dirs[0]
    if winner.name == ENSEMBLE:
        from hfnlp.ops.ensemble import build_ensemble

        run_dir = output_dir / CANDIDATES_DIR / f"{ENSEMBLE}{REFIT_SUFFIX}"
        build_ensemble(refit_dirs, run_dir, weights=[weight for _, weight in members])
    name = f"{winner.name}{REFIT_SUFFIX}"
    epochs = {member.name: epochs for member, epochs, _ in plan}
    why = f"{winner.name} retrained on train + validation ({', '.join(f'{n} {e:g} epochs' for n, e in epochs.items())})"
    text = f"# {why}, by hfnlp train --data\n{(run_dir / RECIPE).read_text(encoding='utf-8')}"
    write_text(output_dir / CANDIDATES_DIR / f"{name}.yaml", text)
    candidate = Candidate(name, load_recipe(run_dir / RECIPE), run_dir, text)
    record_trained(candidate, read_json(run_dir / METRICS), _choice_metric(candidates))
    candidate.status, candidate.why = "refit", why  # not a candidate to choose: it has no validation score
    return Refit(candidate, why, epochs)


def _weighted_members(winner: Candidate, candidates: Sequence[Candidate]) -> list[tuple[Candidate, float]]:
    """The runs that make the winner, with their weights: an ensemble's members of weight > 0, else the winner."""
    if winner.name != ENSEMBLE:
        return [(winner, 1.0)]
    summary = read_json(winner.run_dir / METRICS)
    by_dir = {str(c.run_dir): c for c in candidates}
    pairs = zip(summary["members"], summary["member_weights"], strict=True)
    return [(by_dir[member], float(weight)) for member, weight in pairs if weight > 0]


def _refit_recipe(recipe: Recipe, epochs: float, output_dir: Path) -> Recipe:
    """``recipe`` trained on train + validation for ``epochs``, without evaluation (nothing is left to evaluate
    on), in ``output_dir``."""
    raw = recipe.to_dict()
    raw["output_dir"] = str(output_dir)
    raw["data"]["train_on_validation"] = True
    raw["training"].update(num_train_epochs=epochs, eval_strategy="no", early_stopping_patience=None)
    return recipe_from_dict(raw, source=f"refit of {output_dir.name}")


def _growth(profile: Any, section: Mapping[str, Any]) -> float:
    """How many times the train rows grow when validation joins them (validation and test carved from train by
    the data section's ratios, when not given)."""
    total = profile.rows["train"]
    ratios = {split: float(section.get(f"{split}_ratio", 0.1)) for split in ("validation", "test")}
    carved = [split for split in ratios if split not in profile.given_splits]
    train = total * (1 - sum(ratios[split] for split in carved))
    validation = total * ratios["validation"] if "validation" in carved else profile.rows.get("validation", 0)
    return (train + validation) / train if train > 0 else 1.0


def _choice_metric(candidates: Sequence[Candidate]) -> str:
    """The metric every candidate is compared on: the first (most promising) candidate's metric_for_best_model."""
    return candidates[0].recipe.training.metric_for_best_model.removeprefix("eval_")


def _winner(candidates: Sequence[Candidate], chosen: tuple[str, str, float] | None) -> Candidate:
    trained = [c for c in candidates if c.status == "trained"]
    if not trained:
        failed = "; ".join(f"{c.name}: {c.why}" for c in candidates if c.status == "failed")
        raise RuntimeError(f"no candidate finished training ({failed or 'none was trained'})")
    if chosen is None:  # no validation score anywhere (its checkpoints deleted): the most promising one
        logger.warning("no candidate has a validation score: keeping the first trained one, %s", trained[0].name)
        return trained[0]
    return next(c for c in trained if c.name == chosen[0])


def _install(output_dir: Path, candidates: Sequence[Candidate], winner: Candidate, refit: Refit) -> dict[str, Any]:
    """Put the final model folder (the refit's, else the winner's), recipe and metrics in ``output_dir``; each in
    one step (never half a model)."""
    final = refit.candidate or winner
    with atomic_path(output_dir / MODEL_DIR) as staged:
        shutil.copytree(final.run_dir / MODEL_DIR, staged)
    copy_file(final.run_dir / RECIPE, output_dir / RECIPE)
    summary = {
        **read_json(final.run_dir / METRICS),
        "candidates": [c.row() for c in candidates],
        "chosen": {
            "name": winner.name,
            "model_type": winner.recipe.model.get("type"),
            "validation_metric": winner.validation_metric,
            "validation": winner.validation,
            "run_dir": str(winner.run_dir),
        },
        "refit": {
            "done": refit.candidate is not None,
            "why": refit.why,
            "epochs": refit.epochs,
            "run_dir": str(refit.candidate.run_dir) if refit.candidate else None,
        },
    }
    write_text(output_dir / METRICS, json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


# ----- helpers -------------------------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"
