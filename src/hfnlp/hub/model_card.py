"""Model cards: ``README.md`` of a model folder, rendered from the task's template in ``hub/model_cards/``.

A card is built from what a run wrote (``recipe.yaml``, ``metrics.json``, reports, the usage examples the run
picked from its test split, the model folder's config); what differs between tasks (pipeline tag, template,
extra values) the card asks the run's :class:`~hfnlp.tasks.base.Task`. The front matter is
Hub metadata from :class:`huggingface_hub.ModelCardData` (``model-index`` with the measured values); the body
comes from a Jinja template rendered with ``StrictUndefined``, so a value that is missing is an error, never an
empty gap. A rendered card that still holds a placeholder is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors import safe_open

import hfnlp
from hfnlp.errors import HfnlpError
from hfnlp.recipe import Recipe
from hfnlp.tasks import Task, get_task, load_recipe
from hfnlp.training.atomic import copy_file, write_text
from hfnlp.training.optim import trains_with_lazy_adamw
from hfnlp.training.run_folder import CHECKPOINT_STATE, EXAMPLE_IMAGE, RECIPE, RunFolder

TEMPLATES_DIR = Path(__file__).parent / "model_cards"
GENERIC_TEMPLATE = "_base.md"  # a task without a template of its own gets the generic sections
# metrics.json key -> (Hub metric id, display name, metric args)
_METRICS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "accuracy": ("accuracy", "Accuracy", None),
    "macro_f1": ("f1", "Macro F1", {"average": "macro"}),
    "macro_precision": ("precision", "Macro precision", {"average": "macro"}),
    "macro_recall": ("recall", "Macro recall", {"average": "macro"}),
    "weighted_f1": ("f1", "Weighted F1", {"average": "weighted"}),
    **{f"bleu_{n}": ("bleu", f"BLEU-{n}", {"max_order": n}) for n in range(1, 5)},
    "cider": ("cider", "CIDEr-D", None),
    "rouge_l": ("rouge", "ROUGE-L", None),
}
_NOT_A_SCORE = re.compile(r"loss|runtime|per_second|^epoch$|^step$")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{%|%\}|\[More Information Needed\]|\bTODO\b|\bTBD\b|\bNone\b|\bnan\b")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LANGUAGE_NAMES = {"zh": "Chinese", "en": "English"}
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


@dataclass(frozen=True)
class CardSource:
    """Where a card's facts come from: the run folder, the model folder, and which checkpoint it holds.

    ``checkpoint`` is ``None`` for the run's final model; an exported ``checkpoint-N`` reports that step's
    validation scores (the run's test scores belong to the final model) unless it is the best checkpoint, which
    the final model was loaded from. ``location`` is where the folder is loaded from once in place, when
    ``model_dir`` is the temporary sibling it is being built in (the card goes in with the model, in one step).
    """

    run_dir: Path
    model_dir: Path
    checkpoint: int | None = None
    location: Path | None = None


def find_placeholders(text: str) -> list[str]:
    """Template syntax, ``None``/``nan`` values or "to do" markers left in a rendered card."""
    return sorted({match.group(0) for match in _PLACEHOLDER.finditer(text)})


def render_model_card(source: CardSource, repo_id: str | None = None) -> str:
    """The card for ``source``; its usage snippet loads ``repo_id`` from the Hub, or the local model folder."""
    recipe = load_recipe(source.run_dir / RECIPE)
    task = get_task(recipe.task)
    context = _card_context(recipe, task, source, repo_id)
    template = f"{task.name}.md" if (TEMPLATES_DIR / f"{task.name}.md").is_file() else GENERIC_TEMPLATE
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701  (Markdown, not HTML)
    )
    environment.filters["pyrepr"] = repr
    environment.filters["number"] = _format_number
    try:
        text = environment.get_template(template).render(**context)
    except jinja2.UndefinedError as error:
        raise HfnlpError(f"model card template {template}: {error}") from error
    left = find_placeholders(text)
    if left:
        raise HfnlpError(f"the rendered model card still holds placeholders: {', '.join(left)}")
    ModelCard(text)  # validates the front matter as the Hub will
    return text


def write_model_card(source: CardSource, repo_id: str | None = None) -> Path:
    """Render the card into ``<model_dir>/README.md`` (atomically) and return that path."""
    return write_text(source.model_dir / "README.md", render_model_card(source, repo_id))


def _card_context(recipe: Recipe, task: Task, source: CardSource, repo_id: str | None) -> dict[str, Any]:
    title = repo_id.split("/")[-1] if repo_id else Path(recipe.output_dir).name
    run = RunFolder(source.run_dir)
    metrics = _read_json(run.metrics_path)
    config = _read_json(source.model_dir / "config.json")
    final = _is_final(source, metrics)
    results = _results(source, metrics, final)
    examples = usage_examples(run, source.model_dir)
    language = detect_language(task.card_texts(source.run_dir, examples))
    hub_data = hub_dataset(recipe)
    data_name = hub_data or dataset_name(recipe)
    card_data = ModelCardData(
        model_name=title,
        language=language,
        license=recipe.hub.license,
        library_name="transformers",
        pipeline_tag=task.pipeline_tag,
        base_model=task.base_model(config),
        tags=["hfnlp", recipe.model["type"], *(["custom_code"] if "auto_map" in config else [])],
        datasets=[hub_data] if hub_data else None,  # Hub ids only: local data is described in the card's body
        metrics=sorted({_hub_metric(name)[0] for _, scores in results for name in scores}),
        eval_results=[
            EvalResult(
                task_type=task.pipeline_tag,
                dataset_type=hub_data or "custom",
                dataset_name=data_name,
                dataset_split=split.split(" ")[0],
                metric_type=_hub_metric(name)[0],
                metric_name=f"{_hub_metric(name)[1]} ({split})",
                metric_value=round(float(value), 4),
                metric_args=_hub_metric(name)[2],
            )
            for split, scores in results
            for name, value in scores.items()
        ],
    )
    return {
        "card_data": card_data.to_yaml(),
        "title": title,
        "model_id": repo_id or str(source.location or source.model_dir),
        "on_hub": repo_id is not None,
        "description": recipe.description or f"`{recipe.model['type']}` model for {task.name}, trained with hfnlp.",
        "architecture": (config.get("architectures") or [recipe.model["type"]])[0],
        "model_type": recipe.model["type"],
        "num_parameters": f"{count_parameters(source.model_dir / 'model.safetensors'):,}",
        "language_name": _LANGUAGE_NAMES.get(language or "", "natural-language"),
        "label_names": _label_names(config),
        "data_summary": data_summary(recipe, task.given_splits(recipe.data)),
        "recipe_yaml": yaml.safe_dump(_portable(recipe.to_dict()), sort_keys=False, allow_unicode=True).rstrip(),
        "hyperparameters": _hyperparameters(recipe, metrics),
        "license": recipe.hub.license,
        "results": results,
        "final": final,
        "checkpoint": source.checkpoint,
        "best_checkpoint": Path(metrics.get("best_checkpoint") or "final model").name,
        "environment": _environment(metrics),
        "examples": examples,
        "has_onnx": (source.model_dir / "onnx" / "model.onnx").is_file(),
        "config": config,
        "recipe": recipe,
        **task.card_context(source.run_dir, source.model_dir, final),
    }


def _is_final(source: CardSource, metrics: dict[str, Any]) -> bool:
    if source.checkpoint is None:
        return True
    best = metrics.get("best_checkpoint")
    return best is not None and Path(best).name == f"checkpoint-{source.checkpoint}"


def _results(source: CardSource, metrics: dict[str, Any], final: bool) -> list[tuple[str, dict[str, float]]]:
    """``[(split label, {metric: value})]`` with only the metrics a card reports (no loss, runtimes)."""
    if final:
        results = [("test", _known(metrics.get("test", {})))]
        if metrics.get("validation"):
            results.append(("validation", _known(metrics["validation"])))
        return [(split, scores) for split, scores in results if scores]
    state_path = RunFolder(source.run_dir).checkpoint_dir(source.checkpoint) / CHECKPOINT_STATE
    history = _read_json(state_path).get("log_history", [])
    evals = [e for e in history if e.get("step") == source.checkpoint and "eval_loss" in e]
    if not evals:
        raise HfnlpError(f"{state_path}: no evaluation logged at step {source.checkpoint}")
    scores = _known({key.removeprefix("eval_"): value for key, value in evals[-1].items()})
    return [(f"validation at step {source.checkpoint}", scores)]


def _known(scores: dict[str, Any]) -> dict[str, float]:
    """The scores a card reports: hfnlp's known metrics first, in their order, then any other a task computes
    (never the loss, run times or throughputs)."""
    other = sorted(set(scores) - set(_METRICS))
    return {
        name: float(scores[name])
        for name in [*_METRICS, *other]
        if isinstance(scores.get(name), int | float) and not _NOT_A_SCORE.search(name)
    }


def _hub_metric(name: str) -> tuple[str, str, dict[str, Any] | None]:
    """(Hub metric id, display name, metric args) of a score; a task's own metric keeps its name."""
    return _METRICS.get(name, (name, name, None))


def _hyperparameters(recipe: Recipe, metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    training = recipe.training
    length = ("max steps", training.max_steps) if training.max_steps > 0 else ("epochs", training.num_train_epochs)
    rows = [
        ("model", ", ".join(f"{key}={value}" for key, value in recipe.model.items())),
        length,
        ("batch size", training.per_device_train_batch_size * training.gradient_accumulation_steps),
        ("learning rate", training.learning_rate),
        ("scheduler", f"{training.lr_scheduler_type}, {training.warmup_steps} warm-up steps"),
        ("optimizer", f"{_optimizer(recipe)}, weight decay {training.weight_decay}"),
        ("gradient clipping", training.max_grad_norm),
        ("label smoothing", training.label_smoothing_factor),
        ("mixed precision", _precision(training.mixed_precision, metrics.get("mixed_precision"))),
        ("model selection", f"best {training.metric_for_best_model} on validation ({training.eval_strategy})"),
        ("seed", recipe.seed),
    ]
    if recipe.tokenizer is not None:
        rows.append(("tokenizer", ", ".join(f"{k}={v}" for k, v in vars(recipe.tokenizer).items() if v is not None)))
    return rows


def _optimizer(recipe: Recipe) -> str:
    """The optimizer the run trained with: the recipe's ``optim``, unless sparse embeddings made it LazyAdamW."""
    training = recipe.training
    if not trains_with_lazy_adamw(training.optim, bool(recipe.model.get("sparse_embeddings"))):
        return training.optim
    rule = "lazy Adam" if training.sparse_optimizer == "adamw" else "row-wise Adagrad"
    rows = f"{rule} at learning rate {training.sparse_rate} on the rows each batch uses"
    return f"LazyAdamW (AdamW; the sparse tables: {rows})"


def _precision(asked: str, used: str | None) -> str:
    """The precision the run computed in (``metrics.json``'s ``mixed_precision``), and what the recipe asked for."""
    if used is None:  # a run from before the resolved precision was recorded
        return asked if asked != "auto" else "auto (the precision it resolved to was not recorded)"
    return used if used == asked else f"{used} (recipe: {asked})"


def _portable(value: Any) -> Any:
    """``value`` (the recipe as data) with each absolute path cut to its file name: a card must not show this
    machine's folders."""
    if isinstance(value, dict):
        return {key: _portable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_portable(item) for item in value]
    if isinstance(value, str) and Path(value).is_absolute():
        return Path(value).name
    return value


def _environment(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    env = metrics.get("environment", {})
    rows = [
        ("hfnlp", hfnlp.__version__),
        ("Python", env.get("python")),
        ("PyTorch", env.get("torch")),
        ("Transformers", env.get("transformers")),
        ("platform", env.get("platform")),
        ("CPUs", env.get("cpu_count")),
        ("CPU threads", _threads(env)),
        ("GPU", env.get("cuda") or "none (CPU)"),
        ("training time", _seconds(metrics.get("train_runtime_s"))),
        ("wall time of the run", _seconds(metrics.get("wall_time_s"))),
        ("peak memory", f"{metrics['peak_memory_mb']:,.0f} MiB" if metrics.get("peak_memory_mb") else None),
    ]
    return [(name, value) for name, value in rows if value is not None]


def _threads(env: dict[str, Any]) -> Any:
    threads = env.get("num_threads")
    if threads is None or "source" not in env:  # a GPU run, or a metrics.json from before threads were recorded
        return threads
    # The record of hfnlp.training.threads.configure_threads: why this many.
    busy = "" if env.get("busy_cpus") is None else f", {env['busy_cpus']} kept busy by other processes"
    policy = env.get("omp_wait_policy") or "unset"
    return f"{threads} (from {env['source']}; {env['usable_cpus']} usable CPUs{busy}; OMP_WAIT_POLICY={policy})"


def _seconds(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _label_names(config: dict[str, Any]) -> list[str]:
    if config.get("id2label"):
        return [config["id2label"][key] for key in sorted(config["id2label"], key=int)]
    return list(config.get("label_names") or [])


def usage_examples(run: RunFolder, model_dir: Path) -> list[str]:
    """The real inputs the run picked from its test split for the usage snippet. The run's example image (an image
    task's example) is copied into the model folder, so that the snippet, and a Hub widget, can run on it.

    Only that run file is ever copied: the other examples are texts from the data, which may look like a path.
    """
    if not run.card_examples_path.is_file():
        raise HfnlpError(f"{run.card_examples_path} not found: is this a finished hfnlp run?")
    examples = json.loads(run.card_examples_path.read_text(encoding="utf-8"))
    if EXAMPLE_IMAGE in examples and run.file(EXAMPLE_IMAGE).is_file():
        copy_file(run.file(EXAMPLE_IMAGE), model_dir / EXAMPLE_IMAGE)
    return examples


def detect_language(texts: Iterable[str]) -> str | None:
    """``"zh"`` when most letters are CJK, ``"en"`` when they are ASCII, else ``None`` (unknown)."""
    text = "".join(texts)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    cjk = sum(1 for c in letters if _CJK.match(c))
    if cjk / len(letters) > 0.5:
        return "zh"
    return "en" if sum(1 for c in letters if c.isascii()) / len(letters) > 0.9 else None


def hub_dataset(recipe: Recipe) -> str | None:
    """The Hub id of the training data when it came from the Hub (not a local folder ``datasets`` read), or ``None``."""
    name = getattr(recipe.data, "hub", None)
    if not name or Path(name).expanduser().exists() or not _HUB_ID.fullmatch(name):
        return None
    return name


def dataset_name(recipe: Recipe) -> str:
    """The training data in a few words: the Hub id, hfnlp's built-in set, or the kind of local data (never a path or
    a local file name)."""
    data = recipe.data
    hub = hub_dataset(recipe)
    if hub:
        return hub
    if getattr(data, "builtin", None):
        return f"hfnlp built-in data set {data.builtin}"
    if getattr(data, "hub", None):
        return "a local data set folder"
    for key in ("train_file", "captions_file", "imagefolder"):
        if getattr(data, key, None):
            return f"local data ({_kind(getattr(data, key), data)})"
    raise HfnlpError("cannot name the recipe's data source")


def data_summary(recipe: Recipe, given: set[str] | None) -> str:
    """Where the data came from and how each split was made (``given``: the splits the source holds itself, see
    :meth:`~hfnlp.tasks.base.Task.given_splits`; ``None``: not known without reading it), in Markdown."""
    data = recipe.data
    hub = hub_dataset(recipe)
    origin = f"the Hub data set [`{hub}`](https://huggingface.co/datasets/{hub})" if hub else dataset_name(recipe)
    files = data.split_files() if hasattr(data, "split_files") and getattr(data, "train_file", None) else {}
    lines = [f"Trained on {origin}."]
    for split in ("train", "validation", "test"):
        ratio = getattr(data, f"{split}_ratio", 0.0)  # train has none
        carved = f"{ratio:.0%} of the source's train rows, carved from train with seed {recipe.seed}"
        if split in files:
            how = f"its own file ({_kind(str(files[split]), data)})"
        elif given is not None and split in given:
            how = "the source's own split"
        elif split == "train":
            how = "the source's data"
        elif given is None:
            how = f"the source's own split if it has one, else {carved}"
        elif ratio:
            how = carved
        else:
            continue  # no such split
        lines.append(f"- {split}: {how}")
    if getattr(data, "train_on_validation", False):
        lines.append(
            "- the validation rows were then added to train (`data.train_on_validation`): the final fit of a recipe "
            "already chosen on validation, so no validation score of this model is a held-out estimate"
        )
    return "\n".join(lines)


def _kind(path: str, data: Any) -> str:
    """A local source in words: the ``data`` section's format, or what the name's extension says (``a CSV file``)."""
    file_format = getattr(data, "format", "auto")  # a task's own data section may have no format key
    if file_format != "auto":
        return f"{file_format} format"
    suffix = Path(path).suffix.lower().lstrip(".")
    return f"a {suffix.upper()} file" if suffix else "a folder"


def count_parameters(weights: Path) -> int:
    """Number of parameters stored in a safetensors file (read from its header, no tensor loaded)."""
    total = 0
    with safe_open(str(weights), framework="pt") as handle:
        for name in handle.keys():  # noqa: SIM118  (safe_open has no __iter__)
            shape = handle.get_slice(name).get_shape()
            count = 1
            for size in shape:
                count *= size
            total += count
    return total


def _format_number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HfnlpError(f"{path} not found: is this a finished hfnlp run?")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = [
    "CardSource",
    "count_parameters",
    "data_summary",
    "dataset_name",
    "detect_language",
    "hub_dataset",
    "find_placeholders",
    "render_model_card",
    "usage_examples",
    "write_model_card",
]
