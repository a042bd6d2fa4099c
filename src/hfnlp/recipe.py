"""Recipes: YAML files that fully describe a run.

A recipe has generic sections (``training``, ``hub``, ``output_dir``, ``seed``) defined here, and
task-specific sections (``data``, ``tokenizer``) whose dataclasses the task declares. The ``model`` section is a
mapping with a ``type`` key naming a model family of :mod:`hfnlp.models`; its other keys are validated against that
family's ``PretrainedConfig``. Loading a recipe file goes through :func:`hfnlp.tasks.load_recipe`, which knows the
tasks; this module is below them and knows none.

Every key is checked: an unknown or mistyped key raises :class:`~hfnlp.errors.RecipeError` naming it and
suggesting the closest valid key; a value of the wrong type names the key, the expected type and the value; a value
out of range (a zero batch size, a learning rate of 0 or NaN, an unknown scheduler) names the key, the value and
what is allowed. Recipe files and ``--set`` values are read by :mod:`hfnlp.recipe_yaml`'s safe loader.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from hfnlp.errors import RecipeError
from hfnlp.recipe_yaml import load_yaml

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit unsigned
MAX_THREADS = 1024  # more than any machine's CPUs; torch would start them all (and overflows past 2**31)
HUB_SECTION = (
    "hfnlp pushes the final model folder itself, with its card, at the end of the run: use the hub section "
    "(hub.push_to_hub, hub.repo_id, hub.private, hub.revision); the token comes from `hf auth login` or HF_TOKEN, "
    "never from a recipe"
)
# TrainingArguments fields that training.extra_args may not set, with the reason: hfnlp derives them from the
# recipe, or another hfnlp option does their job. (The training section's own keys are refused as well, pointing at
# the key to set.)
SET_BY_HFNLP = {
    "output_dir": "it is the recipe's output_dir (top level)",
    "seed": "it is the recipe's seed (top level)",
    "data_seed": "it is the recipe's seed (top level)",
    "bf16": "set training.mixed_precision (auto, no, bf16, fp16)",
    "fp16": "set training.mixed_precision (auto, no, bf16, fp16)",
    "use_cpu": "hfnlp sets it from training.mixed_precision and the machine; hide GPUs with CUDA_VISIBLE_DEVICES=",
    "train_sampling_strategy": "set training.group_by_length",
    "length_column_name": "set training.group_by_length: hfnlp's tasks name the length column",
    "load_best_model_at_end": "hfnlp keeps the best checkpoint whenever it evaluates (training.eval_strategy)",
    "greater_is_better": "it follows training.metric_for_best_model (a loss is better lower)",
    "resume_from_checkpoint": "use `hfnlp train RECIPE --resume`",
    "do_train": "Trainer ignores it: hfnlp always trains, evaluates (training.eval_strategy) and tests",
    "do_eval": "Trainer ignores it: hfnlp always trains, evaluates (training.eval_strategy) and tests",
    "do_predict": "Trainer ignores it: hfnlp always trains, evaluates (training.eval_strategy) and tests",
    "local_rank": "accelerate launch sets it for each process",
    **{
        key: HUB_SECTION
        for key in (
            "push_to_hub",
            "hub_model_id",
            "hub_strategy",
            "hub_token",
            "hub_private_repo",
            "hub_always_push",
            "hub_revision",
        )
    },
}


@dataclass
class TrainingConfig:
    """How to train: maps onto ``transformers.TrainingArguments`` plus a few hfnlp options.

    Values are checked when the section is built (:meth:`__post_init__`), so that a recipe that cannot train is
    refused before any work, not after an epoch.
    """

    num_train_epochs: float = 3.0
    max_steps: int = -1
    per_device_train_batch_size: int = 64
    per_device_eval_batch_size: int = 256
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    warmup_steps: float = 0.0
    optim: str = "adamw_torch_fused"  # one fused kernel per step; measured 18% faster BiLSTM steps on CPU
    # How a model with sparse embedding gradients updates the rows a batch used (hfnlp.training.optim.LazyAdamW), at
    # sparse_learning_rate (None: learning_rate); its dense weights always take AdamW at learning_rate.
    sparse_optimizer: Literal["adamw", "rowwise_adagrad"] = "adamw"
    sparse_learning_rate: float | None = None
    max_grad_norm: float = 1.0
    label_smoothing_factor: float = 0.0
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    eval_steps: int | None = None
    save_total_limit: int | None = 2
    metric_for_best_model: str = "accuracy"
    early_stopping_patience: int | None = None
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    group_by_length: bool = False
    logging_steps: int = 50
    dataloader_num_workers: int = 0
    num_threads: int | None = None  # torch's CPU threads; None: fitted to the free CPUs (hfnlp.training.threads)
    torch_compile: bool = False
    # As Trainer takes it: one name ("wandb"; "all": every installed one; "none") or a list of names.
    report_to: str | list[str] = field(default_factory=lambda: ["tensorboard"])
    disable_tqdm: bool | None = None
    # Any other TrainingArguments field (run_name, save_steps, lr_scheduler_kwargs, ...), passed on as given;
    # TrainingArguments itself checks them when the run starts (hfnlp.training.arguments).
    extra_args: dict[str, Any] = field(default_factory=dict)

    @property
    def sparse_rate(self) -> float:
        """The learning rate of sparse embedding tables' rows: ``sparse_learning_rate``, else ``learning_rate``."""
        return self.learning_rate if self.sparse_learning_rate is None else self.sparse_learning_rate

    @property
    def resumable_checkpoints(self) -> bool:
        """Whether checkpoints hold what resuming needs: not with ``extra_args.save_only_model`` (weights only, no
        optimizer, schedule or random state)."""
        return not self.extra_args.get("save_only_model")

    @classmethod
    def unknown_key_hint(cls, key: str) -> str:
        """What to write instead of ``training.<key>``, an unknown key, when TrainingArguments has that field."""
        reason = SET_BY_HFNLP.get(key)
        if reason is not None:
            return f"; {reason}"
        if key in training_arguments_fields():
            return f"; to pass it to TrainingArguments, write it under training.extra_args ({key}: ...)"
        return ""

    def __post_init__(self) -> None:
        """Refuse values Trainer would reject late, or accept and silently misuse (0 epochs trains nothing)."""
        positive_integers = (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
        )
        for key in positive_integers:
            self._require(key, getattr(self, key) >= 1, "an integer >= 1")
        for key in ("eval_steps", "save_total_limit", "early_stopping_patience"):
            self._require(key, getattr(self, key) is None or getattr(self, key) >= 1, "an integer >= 1 or null")
        threads_ok = self.num_threads is None or 1 <= self.num_threads <= MAX_THREADS
        self._require("num_threads", threads_ok, f"an integer in [1, {MAX_THREADS}] or null")
        self._require("dataloader_num_workers", self.dataloader_num_workers >= 0, "an integer >= 0")
        self._require("max_steps", self.max_steps == -1 or self.max_steps >= 1, "-1 (train num_train_epochs) or >= 1")
        if self.max_steps == -1:
            self._require("num_train_epochs", 0 < self.num_train_epochs < math.inf, "a number > 0 (or set max_steps)")
        self._require("learning_rate", 0 < self.learning_rate < math.inf, "a finite number > 0, e.g. 1e-3")
        rate = self.sparse_learning_rate
        self._require("sparse_learning_rate", rate is None or 0 < rate < math.inf, "a finite number > 0 or null")
        for key in ("weight_decay", "warmup_steps"):
            self._require(key, 0 <= getattr(self, key) < math.inf, "a finite number >= 0")
        self._require("max_grad_norm", 0 < self.max_grad_norm < math.inf, "a finite number > 0, e.g. 1.0")
        self._require("label_smoothing_factor", 0 <= self.label_smoothing_factor < 1, "a number in [0, 1), e.g. 0.1")
        # Imported here: transformers is heavy, and this module is imported by commands that never build a recipe.
        from transformers import SchedulerType
        from transformers.integrations import INTEGRATION_TO_CALLBACK
        from transformers.training_args import OptimizerNames

        known_names = {
            "lr_scheduler_type": [member.value for member in SchedulerType],
            "optim": [member.value for member in OptimizerNames],
            "report_to": [*INTEGRATION_TO_CALLBACK, "all", "none"],
        }
        for key, names in known_names.items():
            values = getattr(self, key)
            values = [values] if isinstance(values, str) else values
            for value in values:
                if value not in names:
                    raise RecipeError(
                        f"training.{key}: {value!r} is not one transformers knows{suggest(value, names)}; "
                        f"use one of: {', '.join(names)}"
                    )
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise RecipeError(
                "training.eval_steps is required when training.eval_strategy is 'steps'; set it to e.g. 500"
            )
        if self.eval_strategy == "no" and self.early_stopping_patience is not None:
            raise RecipeError(
                "training.early_stopping_patience needs evaluation, but training.eval_strategy is 'no'; "
                "set eval_strategy to 'epoch' or 'steps', or remove early_stopping_patience"
            )

        self._check_extra_args()

    def _check_extra_args(self) -> None:
        """Each key of ``extra_args`` must be a TrainingArguments field that hfnlp does not set itself, with a value
        of that field's type (the combination is TrainingArguments' to check, when the run starts)."""
        if not self.extra_args:
            return
        from transformers import TrainingArguments

        fields = training_arguments_fields()
        hints = get_type_hints(TrainingArguments)
        recipe_keys = {f.name for f in dataclasses.fields(self)} & fields
        for key, value in list(self.extra_args.items()):
            where = f"training.extra_args.{key}"
            if key in recipe_keys:
                raise RecipeError(f"{where}: set training.{key} instead (a key of the training section)")
            if key in SET_BY_HFNLP:
                raise RecipeError(f"{where}: not allowed; {SET_BY_HFNLP[key]}")
            if key not in fields:
                hint = suggest(key, fields, "training.extra_args.")
                raise RecipeError(f"{where}: not a TrainingArguments field{hint}")
            self.extra_args[key] = _coerce(value, hints[key], where)

    def _require(self, key: str, ok: bool, allowed: str) -> None:
        if not ok:
            raise RecipeError(f"training.{key}: {getattr(self, key)!r} is not allowed; use {allowed}")


def training_arguments_fields() -> set[str]:
    """The fields ``transformers.TrainingArguments`` takes."""
    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments) if f.init}


@dataclass
class HubConfig:
    """Pushing the final model to the Hugging Face Hub at the end of the run."""

    push_to_hub: bool = False
    repo_id: str | None = None
    private: bool = False
    revision: str | None = None
    license: str = "apache-2.0"  # the card's license, a Hub license id (huggingface.co/docs/hub/repositories-licenses)


@dataclass
class NotifierConfig:
    """One notification target: ``url_env`` names the environment variable holding its apprise URL(s) (``tgram://``,
    ``mailto://``, ``slack://``, ``json://`` ...). A URL carries its credentials, so it is never written in a recipe."""

    url_env: str


@dataclass
class NotifyConfig:
    """Where and when to send run notifications (run end, early stop and crash always; epoch end optionally)."""

    notifiers: list[NotifierConfig] = field(default_factory=list)
    on_epoch_end: bool = False
    timeout_s: float = 10.0
    retries: int = 2


@dataclass
class Recipe:
    """A fully resolved recipe. ``data`` and ``tokenizer`` hold the task's own section dataclasses."""

    task: str
    output_dir: str
    data: Any
    model: dict[str, Any]
    tokenizer: Any = None
    training: TrainingConfig = field(default_factory=TrainingConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    seed: int = 42
    description: str = ""

    def __post_init__(self) -> None:
        """Refuse a seed that numpy (hence Trainer's data order) cannot take."""
        if not 0 <= self.seed <= MAX_SEED:
            raise RecipeError(f"seed: {self.seed!r} is not allowed; use an integer in [0, {MAX_SEED}]")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data, as written to ``recipe.yaml`` in the run folder."""
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved recipe as YAML."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")


def apply_overrides(raw: Mapping[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``dotted.key=value`` set; values are parsed as YAML scalars/lists."""
    result = copy.deepcopy(dict(raw))
    for override in overrides:
        key, sep, value_text = override.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(part.strip() for part in parts):
            raise RecipeError(f"--set {override!r} must look like section.key=value")
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:  # absent, or written as an empty section (`training:`)
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"--set {override!r}: {'.'.join(parts[: depth + 1])} is not a section")
            node = child
        node[parts[-1]] = load_yaml(value_text, f"--set {override!r}") if value_text.strip() else None
    return result


def build_recipe(raw: Mapping[str, Any], data_config: type, tokenizer_config: type | None, source: str) -> Recipe:
    """Validate a recipe given as plain data against its task's section dataclasses and build the :class:`Recipe`.

    The ``model`` section is checked only for its shape here; its keys belong to the model family, which the task
    checks (:func:`hfnlp.tasks.recipe_from_dict`).
    """
    values = dict(raw)
    for key, section_cls in (("data", data_config), ("tokenizer", tokenizer_config)):
        if section_cls is None:
            if values.get(key) is not None:
                raise RecipeError(f"{source}: task {values.get('task')!r} takes no {key!r} section")
        elif key in values or key == "tokenizer":
            values[key] = parse_section(section_cls, values.get(key), key)
    if "model" in values and not isinstance(values["model"], Mapping):
        raise RecipeError(f"model: expected a mapping with a 'type' key, got {values['model']!r}")
    return parse_section(Recipe, values, "")


def config_parameters(config_cls: type) -> set[str]:
    """The keys a recipe's ``model`` section may set for a family: what the family's config itself declares."""
    # transformers 5 configs are dataclasses whose generated __init__ also takes every base field (dtype,
    # architectures, ...): a recipe may set only what the family's own classes declare, not transformers' bases.
    names = set()
    for cls in config_cls.__mro__:
        if cls.__module__.split(".")[0] in ("transformers", "builtins"):
            continue
        own = set(cls.__dict__.get("__annotations__", {}))
        if not own and "__init__" in cls.__dict__:
            own = {
                name
                for name, parameter in inspect.signature(cls.__init__).parameters.items()
                if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
            }
        names |= own
    return names | {"id2label", "label2id", "num_labels"}


def parse_section(cls: type, value: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys (with suggestions) and value types."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise RecipeError(f"{where or 'recipe'}: expected a mapping, got {value!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    kwargs = {}
    hint = getattr(cls, "unknown_key_hint", None)  # a section may know better than a spelling suggestion
    for key, item in value.items():
        if key not in fields:
            better = hint(str(key)) if hint is not None else ""
            raise RecipeError(f"unknown key '{prefix}{key}'{better or suggest(str(key), fields, prefix)}")
        kwargs[key] = _coerce(item, hints[key], f"{prefix}{key}")
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise RecipeError(f"missing required key(s): {', '.join(prefix + m for m in missing)}")
    return cls(**kwargs)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if value is None and len(options) < len(get_args(annotation)):
            return None
        for option in options:
            try:
                return _coerce(value, option, where)
            except RecipeError:
                continue
        raise RecipeError(f"{where}: expected {_type_name(annotation)}, got {value!r}")
    if origin is Literal:
        choices = get_args(annotation)
        if value is False and "no" in choices:
            return "no"  # YAML 1.1 reads an unquoted `no` as false, and the README writes `eval_strategy: no`
        if value not in choices:
            raise RecipeError(
                f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}{suggest(str(value), choices)}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise RecipeError(f"{where}: expected a list, got {value!r}")
        (item_type, *_) = get_args(annotation) or (Any,)
        return [_coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}")
        _, value_type = get_args(annotation) or (Any, Any)
        return {k: _coerce(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return parse_section(annotation, value, where)
    if annotation is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, str):
            # YAML 1.1 reads 3e-4 (no dot) as a string; users write learning rates that way.
            try:
                return float(value)
            except ValueError:
                raise RecipeError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecipeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise RecipeError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def suggest(key: Any, valid: Any, prefix: str = "") -> str:
    """`` (did you mean '...'?)`` with the closest of ``valid`` to ``key``, or an empty string."""
    match = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{match[0]}'?)" if match else ""
