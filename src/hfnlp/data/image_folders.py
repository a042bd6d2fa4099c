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

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from PIL import Image

from hfnlp.data.augmentation import AugmentationConfig
from hfnlp.data.builtin import BUILTIN_IMAGE_DATASETS
from hfnlp.data.files import read_table
from hfnlp.data.images import IMAGE_FEATURE, image_name, is_image_file, open_image
from hfnlp.data.reading import (
    SplitFilesConfig,
    apply_bad_rows_policy,
    check_classes,
    checked_label_names,
    infer_label_names,
    label_index,
    read_raw_splits,
)
from hfnlp.errors import DataError

logger = logging.getLogger(__name__)

ImageFormat = Literal["auto", "imagefolder", "csv", "json", "jsonl"]
COLUMN_KEYS = ("image_column", "label_column")


@dataclass
class ImageDataConfig(SplitFilesConfig):
    """The ``data`` section of an image-classification recipe.

    Give exactly one source: ``builtin`` (an embedded data set), ``hub`` (a Hub name, or a local folder that
    ``datasets.load_dataset`` understands), or ``train_file`` (+ optional ``validation_file`` / ``test_file``):
    each an image folder (one sub-folder of images per label) or a CSV / JSON / JSONL table with
    ``image_column`` (image paths) and ``label_column`` (``columns_by_split`` overrides them for a split whose
    table names them differently). ``label_names`` fix the classes and their order.
    """

    FOLDER_FORMAT = "imagefolder"
    BUILTINS = BUILTIN_IMAGE_DATASETS

    format: ImageFormat = "auto"
    image_column: str = "image"
    label_column: str = "label"
    label_names: list[str] | None = None
    bad_images: Literal["error", "skip"] = "error"
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)


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
    ignored: dict[str, int] = {}

    def read_file(split: str, path: Path) -> Dataset:
        dataset, ignored[split] = read_image_source(path, config, split)
        return dataset

    raw = read_raw_splits(config, read_file)
    if config.hub:
        config.check_columns({split: dataset.column_names for split, dataset in raw.items()}, COLUMN_KEYS, "data.hub")
        raw = {split: _image_and_label_columns(dataset, config, split) for split, dataset in raw.items()}
    label_names, declared_by = _resolve_label_names(config, raw["train"])
    splits, skipped = {}, {}
    for split, dataset in raw.items():
        splits[split], skipped[split] = validate_image_split(
            dataset, label_names, split, bad_images=config.bad_images, decode=validate
        )
    check_classes(label_names, {split: dataset["label"] for split, dataset in splits.items()}, declared_by)
    for split, count in ignored.items():
        if count:
            logger.info("%s split: ignored %d file(s) that are not images", split, count)
    splits = config.carve(DatasetDict(splits), seed)
    return ImageClassificationData(
        splits=splits, label_names=label_names, skipped_images=skipped, ignored_files=ignored
    )


def read_image_source(path: Path, config: ImageDataConfig, split: str = "train") -> tuple[Dataset, int]:
    """One split from an image folder or a table: ``image`` + raw ``label`` columns, and the number of
    non-image files ignored."""
    file_format = config.file_format(path)
    if file_format == "imagefolder":
        return read_image_folder(path)
    return read_image_table(path, file_format, config, split), 0


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


def read_image_table(path: Path, file_format: str, config: ImageDataConfig, split: str = "train") -> Dataset:
    """A CSV / JSON / JSONL table of image paths (relative to the table's folder) and labels."""
    # Column types are guessed: integer class ids stay integers, which label names and validation rely on.
    table = read_table(path, file_format, as_text=False)
    config.check_columns({split: table.column_names}, COLUMN_KEYS, str(path))
    image_column, label_column = (config.column(key, split) for key in COLUMN_KEYS)
    images = [
        str(path.parent / value) if isinstance(value, str) and value and not Path(value).is_absolute() else value
        for value in table[image_column]
    ]
    return Dataset.from_dict({"image": images, "label": table[label_column]}).cast_column("image", IMAGE_FEATURE)


def _image_and_label_columns(dataset: Dataset, config: ImageDataConfig, split: str) -> Dataset:
    """A Hub split reduced to ``image`` (undecoded) + ``label``."""
    image_column, label_column = (config.column(key, split) for key in COLUMN_KEYS)
    dataset = dataset.select_columns([image_column, label_column])
    dataset = dataset.rename_columns({image_column: "image", label_column: "label"})
    return dataset.cast_column("image", IMAGE_FEATURE)


def _resolve_label_names(config: ImageDataConfig, train: Dataset) -> tuple[list[str], str]:
    """The classes in id order, and where they come from (for messages)."""
    if config.label_names:
        return checked_label_names(config.label_names, "data.label_names"), "data.label_names"
    feature = train.features["label"]
    if isinstance(feature, ClassLabel):
        return list(feature.names), "the data set's class list"
    return infer_label_names(train["label"], "label"), "the train labels"


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
        label_problem = _label_problem(label, label_ids)
        problem = f"{image_name(record, row)}: {label_problem}" if label_problem else None
        if problem is None and decode:
            problem = _image_problem(record, row)
        if problem:
            problems.append(problem)
            continue
        images.append(record)
        labels.append(label_index(label, label_ids))
    skipped = apply_bad_rows_policy(
        f"{split} split", problems, bad_images, what="bad image(s) or label(s)", key="bad_images"
    )
    if not images:
        raise DataError(f"{split} split: no usable images")
    features = datasets.Features({"image": IMAGE_FEATURE, "label": ClassLabel(names=list(label_names))})
    return Dataset.from_dict({"image": images, "label": labels}, features=features), skipped


def _label_problem(label: Any, label_ids: dict[str, int]) -> str | None:
    if label is None:
        return "label is missing"
    if isinstance(label, bool | float):
        return f"label {label!r} is not an integer id or a label name"
    if label_index(label, label_ids) is not None:
        return None
    if isinstance(label, int):
        return f"label id {label} outside 0..{len(label_ids) - 1}"
    return f"label {label!r} is not one of {', '.join(label_ids)}"


def _image_problem(record: dict[str, Any] | None, row: int) -> str | None:
    if record is None or (record.get("bytes") is None and not record.get("path")):
        return f"row {row + 1}: image is missing"
    try:
        open_image(record, image_name(record, row))
    except DataError as error:
        return str(error)
    return None


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
