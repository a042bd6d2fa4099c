"""What a resumed run may change: the recipe given with ``--resume`` against the one the run folder holds.

A resumed run continues weights, a tokenizer and a data order that the saved recipe produced. A setting is *safe*
to change on resume when none of them depends on it and the checkpoint does not hold it, so that the new value
really applies from the resumed step on:

* safe: how long to train (``training.num_train_epochs``, ``max_steps``), the learning rate (applied to the
  resumed optimizer and schedule by :class:`hfnlp.training.engine.LearningRateOnResume`), ``warmup_steps``,
  ``max_grad_norm`` and ``label_smoothing_factor`` (read at every step), the evaluation, checkpoint, logging and
  early-stopping policy, ``per_device_eval_batch_size``, ``mixed_precision``, ``torch_compile``,
  ``dataloader_num_workers``, ``num_threads``, ``report_to``, ``disable_tqdm``, how the final model folder stores
  the weights (``model.table_storage``: the run trains float32 tables either way), and what surrounds training:
  ``hub``, ``notify``, ``description``, ``output_dir`` (another spelling of the same folder);
* unsafe, refused: ``task``, ``seed``, the rest of the ``model`` section (the weights' shapes and meaning), the ``data``
  section (rows, splits, label names and their order: the ids the output layer learnt), the ``tokenizer`` section
  (the ids the embedding learnt), the batch size and gradient accumulation (which rows a resumed epoch skips),
  ``group_by_length`` (the batch order), ``optim``, ``weight_decay`` and ``lr_scheduler_type`` (held by the
  checkpoint's optimizer and scheduler state, so a new value would be silently ignored), and
  ``metric_for_best_model`` (the best score so far was measured with the old one).

A key not listed as safe is unsafe: a new recipe key is refused on resume until someone decides otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from hfnlp.errors import HfnlpError

SAFE_ON_RESUME = frozenset(
    {
        "output_dir",
        "description",
        "hub",
        "notify",
        "model.table_storage",
        *(
            f"training.{key}"
            for key in (
                "num_train_epochs",
                "max_steps",
                "learning_rate",
                "warmup_steps",
                "max_grad_norm",
                "label_smoothing_factor",
                "per_device_eval_batch_size",
                "eval_strategy",
                "eval_steps",
                "save_total_limit",
                "early_stopping_patience",
                "mixed_precision",
                "logging_steps",
                "dataloader_num_workers",
                "num_threads",
                "torch_compile",
                "report_to",
                "disable_tqdm",
            )
        ),
    }
)


def recipe_changes(saved: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (saved value, new value)}`` for every setting that differs between two recipes (as plain data,
    compared after a YAML round trip so that both read like ``recipe.yaml``)."""
    old_values = _flatten(yaml.safe_load(yaml.safe_dump(dict(saved))))
    new_values = _flatten(yaml.safe_load(yaml.safe_dump(dict(new))))
    keys = sorted(old_values.keys() | new_values.keys())
    return {
        key: (old_values.get(key), new_values.get(key)) for key in keys if old_values.get(key) != new_values.get(key)
    }


def is_safe(key: str) -> bool:
    """Whether the dotted recipe ``key`` may change on resume (it or a section above it is listed as safe)."""
    parts = key.split(".")
    return any(".".join(parts[:depth]) in SAFE_ON_RESUME for depth in range(1, len(parts) + 1))


def check_resumable(changes: Mapping[str, tuple[Any, Any]], where: str) -> None:
    """Refuse changes that make a different run, with a short diff (``key: saved → new``)."""
    unsafe = {key: values for key, values in changes.items() if not is_safe(key)}
    if unsafe:
        diff = "; ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in unsafe.items())
        raise HfnlpError(
            f"{where} holds a run of another recipe ({diff}): these settings change the model, its data or its "
            "labels, so resuming would mix two runs. Train with a new output_dir (--set output_dir=...), or resume "
            "with the saved values."
        )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}
