"""Image-captioning data: recipe section, readers for every supported layout, up-front validation, splits.

Every reader gives, per split, a ``datasets.Dataset`` with one row per image: ``image`` (an undecoded
``datasets.Image``: a path or bytes) and ``captions`` (all reference captions of that image). Every image is
opened once when the data set is built, so a broken, truncated or missing image is reported (or skipped and
counted, with ``bad_rows: skip``) before training starts, never in the middle of an epoch.

Layouts: the original Flickr8k files (``Flickr8k.token.txt`` + ``Flickr_8k.{train,dev,test}Images.txt``), the
Kaggle ``captions.txt`` (``image,caption`` with commas inside captions), Karpathy's split JSON
(``dataset_flickr8k.json`` / ``dataset_flickr30k.json`` / ``dataset_coco.json``), an ``imagefolder`` with
``metadata.jsonl``, a Hub data set (e.g. ``nlphuji/flickr30k``) and the embedded synthetic scenes.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import datasets
from datasets import Dataset, DatasetDict

from hfnlp.data.files import read_lines
from hfnlp.data.images import IMAGE_FEATURE, image_name, open_image
from hfnlp.data.reading import (
    SPLIT_ALIASES,
    DataSourceConfig,
    apply_bad_rows_policy,
    load_dataset_dict,
    splits_by_name,
)
from hfnlp.data.synthetic_scenes import CAPTION_FEATURES, synthetic_scenes
from hfnlp.errors import DataError

CaptionFormat = Literal["auto", "flickr8k", "captions_txt", "karpathy"]
# Karpathy's "restval" images are extra training images (COCO); nlphuji/flickr30k calls validation "val".
_SPLIT_NAMES = {**SPLIT_ALIASES, "restval": "train"}
_VALIDATION_CHUNK = 256
_FLICKR8K_LISTS = {
    "train": "Flickr_8k.trainImages.txt",
    "validation": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}


@dataclass
class CaptionDataConfig(DataSourceConfig):
    """The ``data`` section of an image-captioning recipe.

    Give exactly one source: ``builtin`` (``synthetic_scenes``), ``hub`` (a Hub name, or a local folder that
    ``datasets.load_dataset`` understands), ``imagefolder`` (a folder with ``metadata.jsonl``), or
    ``captions_file`` + ``images_dir`` (Flickr8k token file, Kaggle ``captions.txt``, Karpathy JSON).
    For Flickr8k the split lists default to the standard file names next to the token file. Splits a source
    does not define are carved from train by image with ``validation_ratio`` / ``test_ratio`` (a ratio of 0
    means no such split).

    ``image_size`` overrides the encoder's default input size (and is the size of the synthetic scenes);
    ``cache_features`` computes the feature maps of a frozen encoder once; ``max_samples`` captions per scored
    split go to ``samples.jsonl``; ``bad_rows: skip`` drops and counts unreadable images, captions naming missing
    images and malformed lines instead of stopping. ``builtin_size`` is the number of synthetic scenes (always
    drawn with seed 0).
    """

    SOURCES = ("builtin", "hub", "imagefolder", "captions_file")
    BUILTINS = {"synthetic_scenes": synthetic_scenes}

    format: CaptionFormat = "auto"
    builtin_size: int = 3000
    imagefolder: str | None = None
    captions_file: str | None = None
    images_dir: str | None = None
    train_list: str | None = None
    validation_list: str | None = None
    test_list: str | None = None
    image_column: str = "image"
    caption_column: str = "captions"
    split_column: str | None = None
    bad_rows: Literal["error", "skip"] = "error"
    image_size: int | None = None
    cache_features: bool = True
    max_samples: int = 100


@dataclass
class CaptionData:
    """Validated splits (one row per image) and how many bad rows each split skipped."""

    splits: DatasetDict
    skipped_rows: dict[str, int] = field(default_factory=dict)


def load_caption_data(config: CaptionDataConfig, seed: int = 42) -> CaptionData:
    """Read, validate and split the data a recipe describes."""
    problems = _Problems(config.bad_rows)
    raw = _read_raw_splits(config, problems)
    splits = {split: validate_caption_split(dataset, split, problems) for split, dataset in raw.items()}
    if "train" not in splits:
        raise DataError(f"data: no train split (splits found: {', '.join(splits) or 'none'})")
    return CaptionData(splits=_carve(DatasetDict(splits), config, seed), skipped_rows=problems.counts)


class _Problems:
    """Collects bad rows per split: raises at the first split that has any (``error``) or counts them (``skip``)."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.counts: dict[str, int] = {}

    def report(self, where: str, problems: list[str]) -> None:
        if apply_bad_rows_policy(where, problems, self.policy):
            self.counts[where] = self.counts.get(where, 0) + len(problems)


def _read_raw_splits(config: CaptionDataConfig, problems: _Problems) -> dict[str, Dataset]:
    if config.builtin:
        scenes = config.BUILTINS[config.builtin]
        return {"train": scenes(config.builtin_size, image_size=config.image_size or 96, seed=0)}
    if config.hub:
        return _from_datasets(config, load_dataset_dict(config.hub, config.hub_config), config.hub)
    if config.imagefolder:
        return _read_imagefolder(config)
    path = Path(config.captions_file)
    if not path.is_file():
        raise DataError(f"data.captions_file not found: {path}")
    file_format = config.format if config.format != "auto" else _detect_format(path)
    if file_format == "karpathy":
        return _read_karpathy(path, config)
    images_dir = _images_dir(config, path)
    if file_format == "flickr8k":
        captions = _read_flickr8k_tokens(path, problems)
        return _split_by_lists(captions, images_dir, _flickr8k_lists(config, path), problems)
    return {"train": _caption_rows(_read_captions_txt(path, problems), images_dir)}


def _detect_format(path: Path) -> str:
    if path.suffix.lower() == ".json":
        return "karpathy"
    first = next(iter(read_lines(path)), "")
    if "\t" in first and "#" in first.split("\t", 1)[0]:
        return "flickr8k"
    if "," in first:
        return "captions_txt"
    raise DataError(f"{path}: cannot tell the captions format from its first line; set data.format")


def _images_dir(config: CaptionDataConfig, captions_file: Path) -> Path:
    if config.images_dir:
        folder = Path(config.images_dir)
    else:
        candidates = [captions_file.parent / name for name in ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images")]
        folder = next((c for c in candidates if c.is_dir()), captions_file.parent)
    if not folder.is_dir():
        raise DataError(f"data.images_dir not found: {folder}")
    return folder


def _read_flickr8k_tokens(path: Path, problems: _Problems) -> dict[str, list[str]]:
    """``{image file name: [captions]}`` from ``Flickr8k.token.txt`` lines ``name.jpg#k<TAB>caption``."""
    captions: dict[str, list[str]] = {}
    bad = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        key, tab, caption = line.partition("\t")
        name = key.rsplit("#", 1)[0].strip()
        if not tab or not name or not caption.strip():
            bad.append(f"line {number}: expected 'image.jpg#k<TAB>caption', got {line[:80]!r}")
            continue
        captions.setdefault(name, []).append(caption.strip())
    problems.report(str(path), bad)
    return captions


def _read_captions_txt(path: Path, problems: _Problems) -> dict[str, list[str]]:
    """``{image: [captions]}`` from a Kaggle ``captions.txt``: header ``image,caption``; captions may contain
    commas, quoted or not."""
    captions: dict[str, list[str]] = {}
    bad = []
    rows = csv.reader(read_lines(path))
    header = next(rows, None)
    if not header or [h.strip().lower() for h in header[:2]] != ["image", "caption"]:
        raise DataError(f"{path}: expected the header 'image,caption', got {','.join(header or [])!r}")
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        name, caption = row[0].strip(), ",".join(row[1:]).strip()
        if not name or not caption:
            bad.append(f"line {number}: expected 'image,caption', got {','.join(row)[:80]!r}")
            continue
        captions.setdefault(name, []).append(caption)
    problems.report(str(path), bad)
    return captions


def _flickr8k_lists(config: CaptionDataConfig, token_file: Path) -> dict[str, Path]:
    given = {"train": config.train_list, "validation": config.validation_list, "test": config.test_list}
    lists = {}
    for split, path in given.items():
        if path:
            if not Path(path).is_file():
                raise DataError(f"data.{split}_list not found: {path}")
            lists[split] = Path(path)
        elif (token_file.parent / _FLICKR8K_LISTS[split]).is_file():
            lists[split] = token_file.parent / _FLICKR8K_LISTS[split]
    return lists


def _split_by_lists(
    captions: dict[str, list[str]], images_dir: Path, lists: dict[str, Path], problems: _Problems
) -> dict[str, Dataset]:
    if not lists:
        return {"train": _caption_rows(captions, images_dir)}
    splits = {}
    for split, list_file in lists.items():
        names = [line.strip() for line in read_lines(list_file) if line.strip()]
        uncaptioned = [
            f"{name}: listed in {list_file.name} but has no caption" for name in names if name not in captions
        ]
        problems.report(f"{split} split", uncaptioned)
        splits[split] = _caption_rows({name: captions[name] for name in names if name in captions}, images_dir)
    return splits


def _caption_rows(captions: dict[str, list[str]], images_dir: Path) -> Dataset:
    return Dataset.from_dict(
        {"image": [str(images_dir / name) for name in captions], "captions": list(captions.values())},
        features=CAPTION_FEATURES,
    )


def _read_karpathy(path: Path, config: CaptionDataConfig) -> dict[str, Dataset]:
    """Karpathy's split JSON: ``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}``."""
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a Karpathy split file (JSON with an 'images' list): {error}") from error
    images_dir = Path(config.images_dir) if config.images_dir else path.parent
    rows: dict[str, dict[str, list]] = {}
    for number, entry in enumerate(images, start=1):
        try:
            split = _SPLIT_NAMES.get(entry.get("split", "train"), "train")
            image_path = images_dir / entry.get("filepath", "") / entry["filename"]
            captions = [sentence["raw"] for sentence in entry.get("sentences", [])]
        except (AttributeError, KeyError, TypeError) as error:
            raise DataError(
                f"{path}: image {number} is not {{'filename', 'sentences': [{{'raw'}}]}} ({type(error).__name__}: "
                f"{error}): {str(entry)[:80]}"
            ) from error
        bucket = rows.setdefault(split, {"image": [], "captions": []})
        bucket["image"].append(str(image_path))
        bucket["captions"].append(captions)
    return {split: Dataset.from_dict(columns, features=CAPTION_FEATURES) for split, columns in rows.items()}


def _read_imagefolder(config: CaptionDataConfig) -> dict[str, Dataset]:
    folder = Path(config.imagefolder)
    if not folder.is_dir():
        raise DataError(f"data.imagefolder not found: {folder}")
    if not any(folder.rglob("metadata.jsonl")) and not any(folder.rglob("metadata.csv")):
        raise DataError(f"{folder}: no metadata.jsonl with the captions of the images")
    return _from_datasets(config, load_dataset_dict("imagefolder", data_dir=str(folder)), str(folder))


def _from_datasets(config: CaptionDataConfig, loaded: DatasetDict, source: str) -> dict[str, Dataset]:
    """The splits of a data set ``datasets.load_dataset`` read: by split name, or by ``split_column`` values."""
    standard = [(name, _standard_columns(dataset, config, source)) for name, dataset in loaded.items()]
    if config.split_column:
        standard = [
            (str(value), dataset.filter(lambda v, s=value: v == s, input_columns=config.split_column))
            for _, dataset in standard
            for value in sorted(set(dataset[config.split_column]))
            if str(value) in _SPLIT_NAMES
        ]
    return {
        split: dataset.select_columns(["image", "captions"]).cast(CAPTION_FEATURES)
        for split, dataset in splits_by_name(standard, _SPLIT_NAMES).items()
    }


def _standard_columns(dataset: Dataset, config: CaptionDataConfig, source: str) -> Dataset:
    """Rename the image and caption columns to ``image`` / ``captions`` (a single caption becomes a list)."""
    for column in (config.image_column, config.caption_column, config.split_column):
        if column and column not in dataset.column_names:
            raise DataError(f"{source}: no column {column!r}; columns are {', '.join(dataset.column_names)}")
    if not isinstance(dataset.features[config.image_column], datasets.Image):
        raise DataError(f"{source}: column {config.image_column!r} does not hold images")
    dataset = dataset.cast_column(config.image_column, IMAGE_FEATURE)
    if config.image_column != "image":
        dataset = dataset.rename_column(config.image_column, "image")
    if config.caption_column != "captions":
        dataset = dataset.rename_column(config.caption_column, "captions")
    if isinstance(dataset.features["captions"], datasets.Value):
        dataset = dataset.map(lambda row: {"captions": [row["captions"]] if row["captions"] else []})
    return dataset


def validate_caption_split(dataset: Dataset, split: str, problems: _Problems) -> Dataset:
    """Open every image and check every caption list; return the good rows (bad ones raise or are counted).

    Grayscale, RGBA, CMYK and 16-bit images are fine (they are converted to RGB when used); blank captions are
    dropped; an image that cannot be opened, or that has no caption left, is a bad row. Images are decoded in
    threads (PIL releases the GIL), a chunk of rows at a time so a Hub data set's image bytes stay on disk.
    """
    keep, captions, bad = [], [], []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start in range(0, len(dataset), _VALIDATION_CHUNK):
            chunk = dataset[start : start + _VALIDATION_CHUNK]
            rows = range(start, start + len(chunk["image"]))
            for row, result in zip(rows, pool.map(_check_row, rows, chunk["image"], chunk["captions"]), strict=True):
                if isinstance(result, str):
                    bad.append(result)
                else:
                    keep.append(row)
                    captions.append(result)
    problems.report(f"{split} split", bad)
    if not keep:
        raise DataError(f"{split} split: no usable images")
    clean = dataset.select(keep).remove_columns("captions").add_column("captions", captions)
    return clean.cast(CAPTION_FEATURES)


def _check_row(row: int, image: dict[str, Any], texts: list[str] | None) -> list[str] | str:
    """The row's cleaned captions, or a message saying why the row is bad."""
    name = image_name(image, row)
    texts = [text.strip() for text in texts or [] if isinstance(text, str) and text.strip()]
    if not texts:
        return f"{name}: no caption"
    try:
        open_image(image, name)
    except DataError as error:
        return str(error)
    return texts


def _carve(splits: DatasetDict, config: CaptionDataConfig, seed: int) -> DatasetDict:
    ratios = {"validation": config.validation_ratio, "test": config.test_ratio}
    missing = [name for name in ratios if name not in splits]
    carved = [name for name in missing if ratios[name] > 0]
    if not carved:
        return splits
    if len(carved) < len(missing):
        raise DataError(
            f"data: {' and '.join(missing)} must both be carved from train: set validation_ratio and test_ratio > 0"
        )
    return config.carve(splits, seed, stratify_by_column=None)


def all_captions(dataset: Dataset) -> Iterable[str]:
    """Every caption of every image of a split (what the tokenizer is trained on)."""
    for captions in dataset["captions"]:
        yield from captions
