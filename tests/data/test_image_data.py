"""Image data: folder, table, hub and built-in sources; non-image files ignored; broken images reported or
skipped; the flowers split (when ../shared/data is there)."""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pytest

from hfnlp.data.image_folders import ImageDataConfig, load_image_classification, open_image
from hfnlp.errors import DataError
from hfnlp.tasks import load_recipe
from tests.conftest import SHARED_DATA, requires_shared_data


def copy_classes(source: Path, target: Path, per_class: int = 8) -> Path:
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True)
        for image in sorted(folder.glob("*.jpg"))[:per_class]:
            shutil.copy(image, target / folder.name / image.name)
    return target


def test_image_folder_labels_by_folder_and_ignores_non_image_files(shapes_dir):
    data = load_image_classification(
        ImageDataConfig(train_file=str(shapes_dir), validation_ratio=0.25, test_ratio=0.25), seed=42
    )
    assert data.label_names == ["circle", "square", "triangle"]
    assert data.ignored_files == {"train": 2}  # .DS_Store and notes.txt
    assert data.skipped_images == {"train": 0}
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 60, "validation": 30, "test": 30}
    for split in data.splits.values():  # stratified: every class equally represented
        assert sorted(collections.Counter(split["label"]).values()) == [len(split) // 3] * 3
    paths = [record["path"] for split in data.splits.values() for record in split["image"]]
    assert len(set(paths)) == 120 and all(path.endswith(".jpg") for path in paths)


def test_corrupt_jpegs_are_reported_with_their_path_or_skipped_and_counted(shapes_dir, tmp_path):
    root = copy_classes(shapes_dir, tmp_path / "images")
    intact = (root / "circle" / "000.jpg").read_bytes()
    (root / "circle" / "cut-header.jpg").write_bytes(intact[:200])
    (root / "square" / "cut-pixels.jpg").write_bytes(intact[: len(intact) // 2])
    (root / "triangle" / "text.jpg").write_text("a text file with an image extension", encoding="utf-8")
    config = ImageDataConfig(train_file=str(root), validation_ratio=0.25, test_ratio=0.25)

    with pytest.raises(DataError) as error:
        load_image_classification(config)
    message = str(error.value)
    assert "3 bad image(s) or label(s)" in message and "data.bad_images: skip" in message
    for name in ("circle/cut-header.jpg", "square/cut-pixels.jpg", "triangle/text.jpg"):
        assert str(root / name) in message

    config.bad_images = "skip"
    data = load_image_classification(config)
    assert data.skipped_images == {"train": 3}
    assert sum(len(split) for split in data.splits.values()) == 24
    kept = {record["path"] for split in data.splits.values() for record in split["image"]}
    assert not any("cut-" in path or "text.jpg" in path for path in kept)


def test_csv_and_jsonl_tables_resolve_paths_relative_to_the_table(shapes_dir, tmp_path):
    root = copy_classes(shapes_dir, tmp_path / "images", per_class=4)
    rows = [(f"images/{p.parent.name}/{p.name}", p.parent.name) for p in sorted(root.rglob("*.jpg"))]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,kind\n" + "".join(f"{path},{label}\n" for path, label in rows), encoding="utf-8")
    jsonl_path = tmp_path / "test.jsonl"
    jsonl_path.write_text("".join(json.dumps({"file": p, "kind": k}) + "\n" for p, k in rows[::4]), encoding="utf-8")

    config = ImageDataConfig(
        train_file=str(csv_path),
        test_file=str(jsonl_path),
        image_column="file",
        label_column="kind",
        validation_ratio=0.25,
    )
    data = load_image_classification(config)
    assert data.label_names == ["circle", "square", "triangle"]
    assert len(data.splits["test"]) == 3 and len(data.splits["train"]) + len(data.splits["validation"]) == 12
    assert open_image(data.splits["test"][0]["image"]).size == (40, 40)

    table = csv_path.read_text()
    csv_path.write_text(table + "images/circle/missing.jpg,circle\n")
    with pytest.raises(DataError, match="missing.jpg: image file not found"):
        load_image_classification(config)
    config.bad_images = "skip"
    assert load_image_classification(config).skipped_images == {"train": 1, "test": 0}

    # labels come from train: one that train never had is an error in another split
    csv_path.write_text(table)
    jsonl_path.write_text(jsonl_path.read_text() + json.dumps({"file": rows[0][0], "kind": "hexagon"}) + "\n")
    config.bad_images = "error"
    with pytest.raises(DataError, match="test split: .*label 'hexagon' is not one of circle, square, triangle"):
        load_image_classification(config)


def test_hub_source_loads_through_datasets_load_dataset(shapes_dir):
    # a local folder stands in for a Hub name: the same datasets.load_dataset call reads both
    data = load_image_classification(ImageDataConfig(hub=str(shapes_dir), validation_ratio=0.2, test_ratio=0.2))
    assert data.label_names == ["circle", "square", "triangle"]
    assert sum(len(split) for split in data.splits.values()) == 120
    image = open_image(data.splits["train"][0]["image"])
    assert image.mode == "RGB" and image.size == (40, 40)


def test_builtin_sklearn_digits_is_a_real_embedded_image_set():
    data = load_image_classification(ImageDataConfig(builtin="sklearn_digits"), seed=42, validate=False)
    assert data.label_names == [str(digit) for digit in range(10)]
    assert sum(len(split) for split in data.splits.values()) == 1797
    image = open_image(data.splits["test"][0]["image"])
    assert image.size == (8, 8) and image.mode == "RGB"


def test_data_section_needs_exactly_one_source():
    with pytest.raises(DataError, match="exactly one of builtin, hub or train_file"):
        ImageDataConfig(builtin="sklearn_digits", train_file="x")


@pytest.mark.integration
@requires_shared_data("flowers")
def test_flowers_recipe_split_holds_out_a_stratified_fifth_as_test():
    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "flowers-finetune.yaml")
    recipe.data.train_file = str(SHARED_DATA / "flowers")
    data = load_image_classification(recipe.data, seed=recipe.seed, validate=False)
    total = sum(len(split) for split in data.splits.values())
    assert data.label_names == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    assert data.ignored_files == {"train": 5}  # one .DS_Store per class folder
    assert abs(len(data.splits["test"]) - 0.2 * total) <= 1
    assert abs(len(data.splits["validation"]) - 0.05 * total) <= 1
    counts = collections.Counter(data.splits["test"]["label"])
    assert max(counts.values()) - min(counts.values()) <= 1


def test_tables_and_split_files_follow_the_shared_reading_rules(shapes_dir, tmp_path):
    root = copy_classes(shapes_dir, tmp_path / "images", per_class=4)
    rows = "".join(f"images/{p.parent.name}/{p.name},{p.parent.name}\n" for p in sorted(root.rglob("*.jpg")))
    table = tmp_path / "labels.csv"
    table.write_bytes(("\ufeffimage,label\n" + rows).encode())  # a spreadsheet's byte-order mark
    data = load_image_classification(ImageDataConfig(train_file=str(table), validation_ratio=0.25, test_ratio=0.25))
    assert data.label_names == ["circle", "square", "triangle"]
    with pytest.raises(DataError, match="data.test_file and data.train_file are the same file"):
        ImageDataConfig(train_file=str(table), test_file=str(table))
    with pytest.raises(DataError, match="unknown data set 'digits'; available: sklearn_digits"):
        ImageDataConfig(builtin="digits")
    (tmp_path / "labels.txt").write_text("image,label\n" + rows, encoding="utf-8")
    with pytest.raises(DataError, match="labels.txt: cannot tell the format from the extension"):
        load_image_classification(ImageDataConfig(train_file=str(tmp_path / "labels.txt")))


def test_an_image_folder_with_one_class_is_refused(shapes_dir, tmp_path):
    root = tmp_path / "one"
    shutil.copytree(shapes_dir / "circle", root / "circle")
    with pytest.raises(DataError, match=r"at least two classes with rows; the train labels gives 1 .*rows of: circle"):
        load_image_classification(ImageDataConfig(train_file=str(root)), validate=False)


def test_image_labels_are_checked_like_text_labels(shapes_dir, tmp_path):
    root = copy_classes(shapes_dir, tmp_path / "images", per_class=4)
    images = sorted(root.rglob("*.jpg"))
    table = tmp_path / "labels.csv"
    table.write_text("image,label\n" + "".join(f"{p},{[0, 7][i % 2]}\n" for i, p in enumerate(images)))
    with pytest.raises(DataError, match=r"integer ids 0, 7, not 0..1 without gaps.*data.label_names: \['0', '7'\]"):
        load_image_classification(ImageDataConfig(train_file=str(table)), validate=False)
    with pytest.raises(DataError, match=r"train split: 12 rows are too few to carve validation and test splits of"):
        load_image_classification(ImageDataConfig(train_file=str(table), label_names=["0", "7"]), validate=False)
    config = ImageDataConfig(train_file=str(table), label_names=["0", "7"], validation_ratio=0.25, test_ratio=0.25)
    assert sorted(set(load_image_classification(config, validate=False).splits["train"]["label"])) == [0, 1]

    table.write_text("image,label\n" + "".join(f"{p},{p.parent.name}\n" for p in images))
    config = ImageDataConfig(train_file=str(table), label_names=["circle", "square", "triangle", "star"])
    with pytest.raises(DataError, match=r"train split: no rows for class\(es\) star of data.label_names"):
        load_image_classification(config, validate=False)

    table.write_text("image,label\n" + "".join(f"{p},{[1, 'square'][i % 2]}\n" for i, p in enumerate(images)))
    with pytest.raises(DataError, match=r"mixes integer ids and names"):
        load_image_classification(ImageDataConfig(train_file=str(table)), validate=False)


def test_image_tables_may_name_columns_per_split_and_bad_images_advice_names_set(shapes_dir, tmp_path):
    root = copy_classes(shapes_dir, tmp_path / "images", per_class=4)
    images = sorted(root.rglob("*.jpg"))
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("image,label\n" + "".join(f"{p},{p.parent.name}\n" for p in images))
    test.write_text("file,label\n" + "".join(f"{p},{p.parent.name}\n" for p in images[::2]))
    config = ImageDataConfig(train_file=str(train), test_file=str(test), validation_ratio=0.25)
    with pytest.raises(DataError, match=r"test.csv: test split: no column 'image'; columns are file, label"):
        load_image_classification(config, validate=False)
    config.columns_by_split = {"test": {"image_column": "file"}}
    assert len(load_image_classification(config, validate=False).splits["test"]) == 6

    (root / "circle" / "broken.jpg").write_text("not an image")
    with pytest.raises(DataError, match=r"set data.bad_images: skip in the recipe, or add --set data.bad_images=skip"):
        load_image_classification(ImageDataConfig(train_file=str(root)))
