"""Finding, checking and loading a saved model folder for inference.

A user's mistake (a run without a final model, a folder missing its tokenizer, a truncated weights file, another
library's ``config.json``, a Hub id while offline) becomes one :class:`~hfnlp.errors.HfnlpError` naming the folder,
what is missing or broken and what to do, raised before the libraries would fail with a traceback.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from safetensors import SafetensorError, safe_open

from hfnlp.errors import HfnlpError
from hfnlp.training.run_folder import MODEL_DIR, RunFolder

if TYPE_CHECKING:
    from transformers import Pipeline

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
TOKENIZER = {"tokenizer_config.json": "tokenizer"}
IMAGE_PROCESSOR = {"preprocessor_config.json": "image processor"}
# The JSON files transformers reads when it loads a folder: a damaged one is named before it fails inside them.
JSON_FILES = (CONFIG_FILE, "tokenizer_config.json", "tokenizer.json", "preprocessor_config.json")


@dataclass(frozen=True)
class ModelKind:
    """What a folder must hold for one hfnlp task: that task's model families and the processor files by name."""

    task: str
    auto_class: str  # the transformers Auto class the task's models load with; its families are those registered
    processors: Mapping[str, str] = field(default_factory=dict)
    stock_model_types: tuple[str, ...] = ()  # transformers' own model types the task saves its folders as


TEXT_CLASSIFIER = ModelKind("text-classification", "AutoModelForSequenceClassification", TOKENIZER)
CAPTIONER = ModelKind("image-captioning", "AutoModelForImageTextToText", {**TOKENIZER, **IMAGE_PROCESSOR})
# A timm_wrapper folder keeps its image processor's settings in config.json (pretrained_cfg), no file of its own.
IMAGE_CLASSIFIER = ModelKind(
    "image-classification", "AutoModelForImageClassification", stock_model_types=("timm_wrapper",)
)
KINDS = (TEXT_CLASSIFIER, CAPTIONER, IMAGE_CLASSIFIER)


def resolve_model_folder(model: str | Path) -> Path:
    """The local model folder ``model`` names: a saved model folder, the ``model/`` folder of a run folder, or the
    downloaded (or, offline, cached) snapshot of a Hub model id."""
    path = Path(model)
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return path
        if (path / MODEL_DIR / CONFIG_FILE).is_file():
            return path / MODEL_DIR
        run = RunFolder(path)
        if run.recipe_path.is_file():
            steps = run.checkpoint_steps()
            hint = (
                f"build one from a checkpoint with `hfnlp export {path} --checkpoint {steps[-1]}`"
                if steps
                else "it has no checkpoint either: train it first"
            )
            raise HfnlpError(f"{path} is a run folder without a final model (no {MODEL_DIR}/{CONFIG_FILE}); {hint}")
        raise HfnlpError(f"{path} is neither a model folder (no {CONFIG_FILE}) nor a run folder (no {MODEL_DIR}/)")
    if path.exists():
        raise HfnlpError(f"{path} is a file, not a model folder")
    return _hub_snapshot(str(model))


def _hub_snapshot(model: str) -> Path:
    # A relative path to a folder that does not exist reads like a Hub id ("runs/textcnn"): every message below
    # says both, since only the user knows which one was meant.
    if model.startswith((".", "/", "~")) or "\\" in model:
        raise HfnlpError(f"model folder not found: {model}")
    try:
        return Path(snapshot_download(model))
    except ValueError:  # not a valid repo id
        raise HfnlpError(f"model folder not found: {model}") from None
    except (OSError, HfHubHTTPError) as error:
        if constants.is_offline_mode():
            raise HfnlpError(
                f"model folder not found: {model}; as a Hub model id it is not in the local cache, and offline mode "
                "(HF_HUB_OFFLINE=1) forbids downloading it"
            ) from error
        raise HfnlpError(
            f"model folder not found: {model}; nor could it be downloaded as a Hub model id ({error})"
        ) from error


def check_model_folder(
    folder: Path, kind: ModelKind | None = None, trust_remote_code: bool = False, with_processors: bool = True
) -> None:
    """Refuse, in one line, a folder that cannot be loaded as a model of ``kind`` (without ``kind``: as any model,
    with the processors of its hfnlp task if it has one): unreadable JSON files, a ``config.json`` without
    ``model_type`` (another library's) or of another family, missing or truncated weights, a missing tokenizer /
    image processor (unless not ``with_processors``: a checkpoint's are in its run's ``tokenizer/`` folder).

    With ``trust_remote_code`` a folder that carries its own code (``auto_map``) may hold a model type hfnlp does not
    know.
    """
    # Every JSON file is parsed, so that a damaged tokenizer.json is named here rather than deep in tokenizers.
    configs = {name: _read_json(folder / name) for name in JSON_FILES if (folder / name).is_file()}
    config = configs.get(CONFIG_FILE)
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str):
        raise HfnlpError(
            f"{folder}/{CONFIG_FILE} has no model_type: it is not the config of a transformers model (a folder of "
            "another library?)"
        )
    found = kind_of(model_type)
    remote = trust_remote_code and "auto_map" in config
    if kind is not None and found != kind and not remote:
        raise HfnlpError(
            f"{folder} holds a {found.task + ' model' if found else 'model'} of type {model_type!r}, not one of "
            f"hfnlp's {kind.task} models ({', '.join(_families(kind))})"
            + ("; pass --trust-remote-code to run the folder's own code" if "auto_map" in config else "")
        )
    _check_weights(folder)
    processors = (kind or found).processors if with_processors and (kind or found) else {}
    for file, what in processors.items():
        if not (folder / file).is_file():
            raise HfnlpError(
                f"{folder} has no {what} ({file} is missing): a model only works with the {what} it was trained "
                f"with; copy it from its run's tokenizer/ folder, or {_rebuild_hint(folder)}"
            )


def model_kind(folder: Path) -> ModelKind:
    """The kind of hfnlp model in ``folder`` (its ``task``), from its ``config.json``; one line when it holds none."""
    try:
        model_type = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise HfnlpError(f"{folder}/{CONFIG_FILE} cannot be read as a model config: {error}") from None
    kind = kind_of(model_type) if isinstance(model_type, str) else None
    if kind is None:
        raise HfnlpError(
            f"{folder} holds a model of type {model_type!r}, of no hfnlp task; hfnlp's tasks are "
            f"{', '.join(k.task for k in KINDS)}"
        )
    return kind


def kind_of(model_type: str) -> ModelKind | None:
    """The kind of hfnlp model whose families include ``model_type`` (a ``config.json``'s), or ``None``."""
    return next(
        (kind for kind in KINDS if model_type in kind.stock_model_types or model_type in _families(kind).values()), None
    )


def _families(kind: ModelKind) -> dict[str, str]:
    """The model type of each hfnlp family of ``kind``, by recipe ``model.type``."""
    from hfnlp.models import families_loaded_by  # imports every family's model code: only when a folder is checked

    return {name: family.config_class.model_type for name, family in families_loaded_by(kind.auto_class).items()}


def _rebuild_hint(folder: Path) -> str:
    """How to get a complete folder again: from a checkpoint of the run ``folder`` belongs to, where it is known."""
    run = RunFolder(folder.parent)
    steps = [step for step in run.checkpoint_steps() if run.checkpoint_dir(step) != folder]
    if run.recipe_path.is_file() and steps:
        return f"build a complete folder from a checkpoint with `hfnlp export {run.path} --checkpoint {steps[-1]}`"
    return "build a complete folder from its run's checkpoint with `hfnlp export RUN --checkpoint N`"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HfnlpError(f"{path} is damaged (not readable JSON: {error}); {_rebuild_hint(path.parent)}") from error


def _check_weights(folder: Path) -> None:
    # safetensors checks, from the header alone, that the file holds every byte the header promises: a cut copy
    # fails here in microseconds instead of deep inside from_pretrained.
    shards = [WEIGHTS_FILE]
    if not (folder / WEIGHTS_FILE).is_file() and (folder / WEIGHTS_INDEX).is_file():
        index = _read_json(folder / WEIGHTS_INDEX)
        shards = sorted(set(index.get("weight_map", {}).values())) if isinstance(index, dict) else []
    for name in shards:
        path = folder / name
        if not path.is_file():
            raise HfnlpError(f"{folder} has no model weights ({name} is missing); {_rebuild_hint(folder)}")
        try:
            with safe_open(path, framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            raise HfnlpError(
                f"{path} is truncated or corrupt ({error}); copy it again, or {_rebuild_hint(folder)}"
            ) from error


@contextlib.contextmanager
def loading_errors(folder: Path) -> Iterator[None]:
    """Turn what transformers, tokenizers and safetensors raise for a folder they cannot load into one line; the
    checks of :func:`check_model_folder` name the usual causes first."""
    try:
        yield
    except (OSError, ValueError, SafetensorError) as error:
        raise HfnlpError(f"cannot load the model in {folder}: {error}") from error


def load_captioner(model: str | Path, trust_remote_code: bool = False) -> Pipeline:
    """An ``image-captioning`` pipeline for a saved hfnlp captioner (a model or run folder, or a Hub id)."""
    from transformers import pipeline

    import hfnlp.models  # noqa: F401  (registers the captioner with the Auto classes)
    from hfnlp.models.backbones import channels_last
    from hfnlp.pipelines.image_captioning import TASK  # registers the task

    folder = resolve_model_folder(model)
    check_model_folder(folder, CAPTIONER, trust_remote_code)
    with loading_errors(folder):
        captioner = pipeline(TASK, model=str(folder), trust_remote_code=trust_remote_code)
    channels_last(captioner.model)
    return captioner


def load_image_classifier(model: str | Path, trust_remote_code: bool = False) -> Pipeline:
    """An ``image-classification`` pipeline for a saved hfnlp image classifier (a model or run folder, or a Hub id):
    a stock ``timm_wrapper`` folder, or an older hfnlp one (with its own code)."""
    import torch
    from transformers import pipeline

    import hfnlp.models  # noqa: F401  (registers the older folders' family with the Auto classes)
    from hfnlp.models.backbones import channels_last

    folder = resolve_model_folder(model)
    check_model_folder(folder, IMAGE_CLASSIFIER, trust_remote_code)
    with loading_errors(folder):
        device = 0 if torch.cuda.is_available() else -1
        classifier = pipeline(
            "image-classification", model=str(folder), trust_remote_code=trust_remote_code, device=device
        )
    channels_last(classifier.model)
    return classifier
