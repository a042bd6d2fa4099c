"""``TrainingArguments`` from a recipe: precision, evaluation and checkpoint policy, and the process set-up.

Everything a recipe's ``training`` section implies for Trainer is decided here, before any work starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from transformers import TrainingArguments
from transformers.integrations import get_available_reporting_integrations

from hfnlp.errors import RecipeError
from hfnlp.recipe import Recipe
from hfnlp.training.console import trainer_console_arguments


def resolve_precision(mixed_precision: str) -> tuple[bool, bool]:
    """``(bf16, fp16)`` for the recipe's ``mixed_precision``.

    ``auto`` is bf16 where the hardware computes in bf16 natively (Ampere+ GPUs; CPUs with AVX512-BF16 or AMX,
    where oneDNN's bf16 LSTM and convolution kernels measured ~2× faster than fp32), fp16 on older GPUs, and
    fp32 elsewhere (emulated bf16 is slower than fp32).
    """
    cuda = torch.cuda.is_available()
    if mixed_precision == "auto":
        if cuda:
            return (True, False) if torch.cuda.is_bf16_supported() else (False, True)
        return cpu_has_native_bf16(), False
    if mixed_precision == "fp16" and not cuda:
        raise RecipeError("training.mixed_precision: fp16 needs a CUDA GPU; use bf16 or no on this machine")
    return mixed_precision == "bf16", mixed_precision == "fp16"


def autocast_dtype(mixed_precision: str) -> torch.dtype | None:
    """The dtype ``torch.autocast`` computes in for the recipe's ``mixed_precision`` (as Trainer does it), or None
    for float32: for work done outside Trainer, such as caching a frozen encoder's features."""
    bf16, fp16 = resolve_precision(mixed_precision)
    return torch.bfloat16 if bf16 else torch.float16 if fp16 else None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (x86 AVX512-BF16 or AMX-BF16), read from ``/proc/cpuinfo``."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: no cheap, reliable way to tell, so stay in fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_training_arguments(recipe: Recipe, output_dir: str | Path, **overrides: Any) -> TrainingArguments:
    """``TrainingArguments`` for the recipe's ``training`` section (``overrides`` win, e.g. from tasks)."""
    t = recipe.training
    bf16, fp16 = resolve_precision(t.mixed_precision)
    evaluating = t.eval_strategy != "no"
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_steps,
        optim=t.optim,
        max_grad_norm=t.max_grad_norm,
        label_smoothing_factor=t.label_smoothing_factor,
        eval_strategy=t.eval_strategy,
        eval_steps=t.eval_steps,
        # Checkpoints follow evaluation so that the best one can be kept.
        save_strategy=t.eval_strategy if evaluating else "epoch",
        save_steps=t.eval_steps,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=evaluating,
        metric_for_best_model=t.metric_for_best_model if evaluating else None,
        greater_is_better=not t.metric_for_best_model.endswith("loss") if evaluating else None,
        bf16=bf16,
        fp16=fp16,
        use_cpu=bf16 and not torch.cuda.is_available(),  # else TrainingArguments refuses bf16 without a GPU
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        length_column_name="length",
        logging_steps=t.logging_steps,
        report_to=t.report_to,
        dataloader_num_workers=t.dataloader_num_workers,
        torch_compile=t.torch_compile,
        seed=recipe.seed,
        data_seed=recipe.seed,
        **trainer_console_arguments(t.disable_tqdm),
        run_name=Path(output_dir).name,  # how trackio, wandb, mlflow... name the run (unless extra_args does)
    )
    # The keys extra_args may set were checked when the recipe loaded (hfnlp.recipe.TrainingConfig); save_strategy
    # and save_steps replace the checkpoint policy above, which TrainingArguments checks against evaluation.
    kwargs.update(t.extra_args)
    kwargs.update(overrides)
    # A type error from what the user wrote under extra_args (a list where a mapping goes) is theirs too.
    user_errors: tuple[type[Exception], ...] = (ValueError, TypeError) if t.extra_args else (ValueError,)
    try:
        args = TrainingArguments(**kwargs)
    except user_errors as error:
        # The recipe's values are checked when it loads; what is left is a combination or this machine refusing
        # them (e.g. bf16 on a GPU without it, reduce_lr_on_plateau without evaluation): the user's to change.
        message = " ".join(str(error).split())
        named = [f"training.extra_args.{key}" for key in t.extra_args if key in message]
        given = f" (with training.extra_args {', '.join(t.extra_args)})" if t.extra_args else ""
        where = ", ".join(named) if named else f"training{given}"
        raise RecipeError(f"{where}: transformers refuses these settings: {message}") from error
    check_built_late(args, t.extra_args)
    # Checked here, not when the recipe loads: a recipe is also read where it is not trained (export, cards).
    installed = get_available_reporting_integrations()
    missing = [name for name in args.report_to if name not in installed]
    if missing:
        raise RecipeError(
            f"training.report_to: {missing[0]!r} is not installed here; install it or leave it out "
            f"(installed: {', '.join(installed) or 'none'})"
        )
    return args


def check_built_late(args: TrainingArguments, extra_args: Mapping[str, Any]) -> None:
    """Build the optimizer and the schedule once on a throwaway parameter when ``extra_args`` sets how (its
    ``optim_args``, ``lr_scheduler_kwargs``): Trainer builds them only after the data and the model, and a
    keyword they do not take would fail there, with a traceback."""
    from transformers import Trainer, get_scheduler

    checks = [key for key in ("optim_args", "lr_scheduler_kwargs") if extra_args.get(key)]
    if not checks:
        return
    layer = torch.nn.Linear(1, 1)
    try:
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, layer)
        optimizer = optimizer_cls(layer.parameters(), **optimizer_kwargs)
        get_scheduler(
            args.lr_scheduler_type,
            optimizer,
            num_warmup_steps=1,
            num_training_steps=2,
            scheduler_specific_kwargs=args.lr_scheduler_kwargs,
        )
    except (TypeError, ValueError) as error:
        given = ", ".join(f"training.extra_args.{key}: {extra_args[key]!r}" for key in checks)
        raise RecipeError(
            f"{given}: the {args.optim} optimizer or the "
            f"{getattr(args.lr_scheduler_type, 'value', args.lr_scheduler_type)} schedule refuses it "
            f"({' '.join(str(error).split())})"
        ) from error


def process_state(recipe: Recipe) -> PartialState:
    """This process's place in the run (main or not, how many processes), as Trainer sees it.

    accelerate's state is a singleton set up by whoever asks first, and only ``TrainingArguments`` sets it up from
    the launch as Trainer needs it (several CPU processes under ``accelerate launch`` are one gloo group only then;
    a bare ``PartialState()`` sees each as alone), so they are built first.
    """
    build_training_arguments(recipe, recipe.output_dir)
    return PartialState()
