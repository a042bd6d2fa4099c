"""Image-classification data: recipe section, readers for every supported layout, up-front validation, splits.

Sources: an ``imagefolder`` layout (one sub-folder per label, the label is the folder name), a CSV / JSON /
JSONL table of image path + label (relative paths are relative to the table), a data set that
``datasets.load_dataset`` understands (a Hub name or a local folder), or a built-in set.

Every reader ends in a ``datasets.DatasetDict`` with an ``image`` column (``datasets.Image(decode=False)``:
``{"path", "bytes"}``, decoded only when used) and a ``label`` column (``ClassLabel``), with ``train`` /
``validation`` / ``test`` splits; missing splits are carved from train by ratio, stratified, with the recipe's
seed. Files that are not images (``.DS_Store``, ``Thumbs.db``, notes) are ignored and counted; images that
cannot be decoded are reported with their path, or left out and counted with ``bad_images: skip``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from PIL import Image

from hfnlp.data.augmentation import AugmentationConfig
from hfnlp.data.images import is_image_file, load_image
from hfnlp.data.splits import SPLIT_ALIASES, carve_missing_splits
from hfnlp.errors import DataError

logger = logging.getLogger(__name__)

ImageFormat = Literal["auto", "imagefolder", "csv", "json", "jsonl"]
_TABLE_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
IMAGE_FEATURE = datasets.Image(decode=False)


@dataclass
class ImageDataConfig:
    """The ``data`` section of an image-classification recipe.

    Give exactly one source: ``builtin`` (an embedded data set), ``hub`` (a Hub name, or a local folder that
    ``datasets.load_dataset`` understands), or ``train_file`` (+ optional ``validation_file`` / ``test_file``):
    each an image folder (one sub-folder of images per label) or a CSV / JSON / JSONL table with
    ``image_column`` (image paths) and ``label_column``.
    """

    builtin: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    format: ImageFormat = "auto"
    image_column: str = "image"
    label_column: str = "label"
    label_names: list[str] | None = None
    validation_ratio: float = 0.1
    test_ratio: float = 0.1
    bad_images: Literal["error", "skip"] = "error"
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)

    def __post_init__(self) -> None:
        sources = [name for name in ("builtin", "hub", "train_file") if getattr(self, name)]
        if len(sources) != 1:
            raise DataError(f"data: give exactly one of builtin, hub or train_file (got {sources or 'none'})")


@dataclass
class ImageClassificationData:
    """Validated splits, the label names, and per split how many bad images were skipped and how many
    non-image files were ignored."""

    splits: DatasetDict
    label_names: list[str]
    skipped_images: dict[str, int] = field(default_factory=dict)
    ignored_files: dict[str, int] = field(default_factory=dict)


def load_image_classification(
    config: ImageDataConfig, seed: int = 42, validate: bool = True
) -> ImageClassificationData:
    """Load, validate and split the data a recipe describes.

    With ``validate`` every image is decoded once up front, so a broken file stops the run before training
    (or is skipped); without it only labels are checked (for quick previews).
    """
    raw, ignored = _read_raw_splits(config)
    label_names = _resolve_label_names(config, raw["train"])
    splits, skipped = {}, {}
    for split, dataset in raw.items():
        splits[split], skipped[split] = validate_image_split(
            dataset, label_names, split, bad_images=config.bad_images, decode=validate
        )
    for split, count in ignored.items():
        if count:
            logger.info("%s split: ignored %d file(s) that are not images", split, count)
    splits = carve_missing_splits(
        DatasetDict(splits), validation_ratio=config.validation_ratio, test_ratio=config.test_ratio, seed=seed
    )
    return ImageClassificationData(
        splits=splits, label_names=label_names, skipped_images=skipped, ignored_files=ignored
    )


def _read_raw_splits(config: ImageDataConfig) -> tuple[dict[str, Dataset], dict[str, int]]:
    if config.builtin:
        if config.builtin not in BUILTIN_IMAGE_DATASETS:
            raise DataError(
                f"data.builtin: unknown data set {config.builtin!r}; available: {', '.join(BUILTIN_IMAGE_DATASETS)}"
            )
        return {"train": BUILTIN_IMAGE_DATASETS[config.builtin]()}, {}
    if config.hub:
        return _read_hub(config), {}
    raw, ignored = {}, {}
    for split, path in (
        ("train", config.train_file),
        ("validation", config.validation_file),
        ("test", config.test_file),
    ):
        if path:
            raw[split], ignored[split] = read_image_source(Path(path), config)
    return raw, ignored


def read_image_source(path: Path, config: ImageDataConfig) -> tuple[Dataset, int]:
    """One split from an image folder or a table: ``image`` + raw ``label`` columns, and the number of
    non-image files ignored."""
    if not path.exists():
        raise DataError(f"data file or folder not found: {path}")
    file_format = config.format if config.format != "auto" else _detect_format(path)
    if file_format == "imagefolder":
        return read_image_folder(path)
    return read_image_table(path, file_format, config), 0


def _detect_format(path: Path) -> str:
    if path.is_dir():
        return "imagefolder"
    file_format = _TABLE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise DataError(f"{path}: cannot tell the format from the extension; set data.format")
    return file_format


def read_image_folder(root: Path) -> tuple[Dataset, int]:
    """Every image below ``root/<label>/`` (sub-folders included), labelled with the folder name."""
    if not root.is_dir():
        raise DataError(f"{root}: format imagefolder expects a folder with one sub-folder of images per label")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels, ignored = [], [], 0
    for folder in folders:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            if is_image_file(file):
                paths.append(str(file))
                labels.append(folder.name)
            else:
                ignored += 1
    if not paths:
        raise DataError(f"{root}: no image files found in label sub-folders ({root}/<label>/<image>)")
    return Dataset.from_dict({"image": paths, "label": labels}).cast_column("image", IMAGE_FEATURE), ignored


def read_image_table(path: Path, file_format: str, config: ImageDataConfig) -> Dataset:
    """A CSV / JSON / JSONL table of image paths (relative to the table's folder) and labels."""
    try:
        table = datasets.load_dataset(
            "csv" if file_format == "csv" else "json", data_files={"data": str(path)}, split="data"
        )
    except Exception as error:  # pandas / pyarrow parse errors of many types; keep their message
        raise DataError(f"{path}: cannot be read as {file_format}: {error}") from error
    for column in (config.image_column, config.label_column):
        if column not in table.column_names:
            raise DataError(f"{path}: no column {column!r}; columns are {', '.join(table.column_names)}")
    images = [
        str(path.parent / value) if isinstance(value, str) and value and not Path(value).is_absolute() else value
        for value in table[config.image_column]
    ]
    return Dataset.from_dict({"image": images, "label": table[config.label_column]}).cast_column("image", IMAGE_FEATURE)


def _read_hub(config: ImageDataConfig) -> dict[str, Dataset]:
    try:
        loaded = datasets.load_dataset(config.hub, config.hub_config)
    except Exception as error:  # datasets raises many types: connection, missing file, bad config
        raise DataError(f"data.hub: cannot load {config.hub!r}: {error}") from error
    splits = {}
    for name, dataset in loaded.items():
        canonical = SPLIT_ALIASES.get(name)
        if canonical is None:
            continue
        for column in (config.image_column, config.label_column):
            if column not in dataset.column_names:
                raise DataError(f"data.hub: {name} split has no column {column!r}; columns: {dataset.column_names}")
        dataset = dataset.select_columns([config.image_column, config.label_column])
        dataset = dataset.rename_columns({config.image_column: "image", config.label_column: "label"})
        splits[canonical] = dataset.cast_column("image", IMAGE_FEATURE)
    if "train" not in splits:
        raise DataError(f"data.hub: {config.hub!r} has no train split (splits: {', '.join(loaded)})")
    return splits


def _resolve_label_names(config: ImageDataConfig, train: Dataset) -> list[str]:
    if config.label_names:
        return [str(name) for name in config.label_names]
    feature = train.features["label"]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = {value for value in train["label"] if value is not None}
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return [str(i) for i in range(max(values) + 1)]
    return sorted(str(v) for v in values)


def validate_image_split(
    dataset: Dataset, label_names: Sequence[str], split: str, bad_images: str = "error", decode: bool = True
) -> tuple[Dataset, int]:
    """Check the labels and (with ``decode``) decode every image of one split; return it as ``image`` +
    ``label`` (``ClassLabel``) and the number of rows skipped.

    With ``bad_images: error`` the problems are raised naming the files; with ``skip`` the rows are dropped,
    counted and logged.
    """
    label_ids = {name: i for i, name in enumerate(label_names)}
    feature = dataset.features["label"]
    problems, images, labels = [], [], []
    for row, (record, label) in enumerate(zip(dataset["image"], dataset["label"], strict=True)):
        if isinstance(feature, ClassLabel) and label is not None:
            label = feature.int2str(label) if label >= 0 else None
        label_problem = _label_problem(label, label_ids, len(label_names))
        problem = f"{_record_name(record, row)}: {label_problem}" if label_problem else None
        if problem is None and decode:
            problem = _image_problem(record, row)
        if problem:
            problems.append(problem)
            continue
        images.append(record)
        labels.append(label if isinstance(label, int) else label_ids[str(label)])
    if problems and bad_images == "error":
        shown = "; ".join(problems[:5]) + (f"; … {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(
            f"{split} split: {len(problems)} bad image(s) or label(s): {shown} "
            "(set data.bad_images: skip to leave them out)"
        )
    if problems:
        logger.warning("%s split: skipped %d bad image(s) or label(s), e.g. %s", split, len(problems), problems[0])
    if not images:
        raise DataError(f"{split} split: no usable images")
    features = datasets.Features({"image": IMAGE_FEATURE, "label": ClassLabel(names=list(label_names))})
    return Dataset.from_dict({"image": images, "label": labels}, features=features), len(problems)


def _label_problem(label: Any, label_ids: dict[str, int], num_labels: int) -> str | None:
    if label is None:
        return "label is missing"
    if isinstance(label, bool | float):
        return f"label {label!r} is not an integer id or a label name"
    if isinstance(label, int):
        return None if 0 <= label < num_labels else f"label id {label} outside 0..{num_labels - 1}"
    if str(label) not in label_ids:
        return f"label {label!r} is not one of {', '.join(label_ids)}"
    return None


def _image_problem(record: dict[str, Any] | None, row: int) -> str | None:
    if record is None or (record.get("bytes") is None and not record.get("path")):
        return f"row {row + 1}: image is missing"
    try:
        open_image(record)
    except DataError as error:
        # load_image names files by path; images stored as bytes are named here
        message = str(error)
        return f"{_record_name(record, row)}: {message.removeprefix('<image>: ')}" if record.get("bytes") else message
    return None


def _record_name(record: dict[str, Any] | None, row: int) -> str:
    return (record or {}).get("path") or f"row {row + 1}"


def open_image(record: dict[str, Any]) -> Image.Image:
    """Decode an ``image`` cell (``{"path", "bytes"}``) to RGB; :class:`DataError` names the file if broken."""
    source = record["bytes"] if record.get("bytes") is not None else record["path"]
    try:
        return load_image(source)
    except OSError as error:  # PIL's error for a header cut short, raised by Image.open itself
        name = record["path"] if isinstance(source, str) else "<image>"
        raise DataError(f"{name}: broken or truncated image ({error})") from error


class TransformedImages(torch.utils.data.Dataset):
    """A split as Trainer examples ``{"pixel_values", "labels"}``: each image decoded and transformed on access."""

    def __init__(self, split: Dataset, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.split[index]
        return {"pixel_values": self.transform(open_image(row["image"])), "labels": row["label"]}


def sklearn_digits() -> Dataset:
    """The 1,797 handwritten digits (8×8 grey scans, 10 classes) that ship inside scikit-learn, as PNG bytes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = []
    for index, pixels in enumerate(digits.images):
        buffer = io.BytesIO()
        Image.fromarray(np.round(pixels * 255 / 16).astype(np.uint8), mode="L").save(buffer, format="PNG")
        images.append({"bytes": buffer.getvalue(), "path": f"sklearn-digits/{index:04d}.png"})
    labels = [str(target) for target in digits.target]
    return Dataset.from_dict({"image": images, "label": labels}).cast_column("image", IMAGE_FEATURE)


BUILTIN_IMAGE_DATASETS: dict[str, Callable[[], Dataset]] = {"sklearn_digits": sklearn_digits}
