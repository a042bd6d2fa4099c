"""Caption data: synthetic scenes, every reader (Flickr8k, captions.txt, Karpathy JSON, imagefolder, hub),
up-front image validation with clear errors or counted skips, and the caption tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from hfnlp.data.captions import CaptionDataConfig, load_caption_data
from hfnlp.data.synthetic_scenes import COLOURS, SHAPES, synthetic_scenes, write_imagefolder
from hfnlp.errors import DataError, RecipeError
from hfnlp.tokenization.captions import CaptionTokenizerConfig, train_caption_tokenizer
from hfnlp.tokenization.text import load_saved_tokenizer, save_tokenizer


def save_image(path: Path, mode: str = "RGB", size: int = 32) -> Path:
    colour = {"RGB": (200, 30, 30), "L": 128, "RGBA": (0, 0, 255, 128), "CMYK": (0, 255, 255, 0)}[mode]
    PILImage.new(mode, (size, size), colour).save(path)
    return path


def truncated_jpeg(path: Path) -> Path:
    save_image(path.with_suffix(".tmp.jpg"), size=64)
    data = path.with_suffix(".tmp.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def flickr8k_folder(root: Path, extra_token_lines: str = "") -> Path:
    """A tiny copy of the original Flickr8k layout: token file, split lists, image folder."""
    images = root / "Flicker8k_Dataset"
    images.mkdir(parents=True)
    names = [f"img{i}.jpg" for i in range(6)]
    for name in names:
        save_image(images / name)
    lines = [f"{name}#{k}\t{name[:-4]} caption number {k} ." for name in names for k in range(5)]
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n" + extra_token_lines)
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(names[:4]) + "\n")
    (root / "Flickr_8k.devImages.txt").write_text("\n".join(names[4:]) + "\n")
    return root


def test_synthetic_scenes_are_deterministic_and_described_by_their_captions():
    first, again, other = (
        synthetic_scenes(20, 48, seed=1),
        synthetic_scenes(20, 48, seed=1),
        synthetic_scenes(20, 48, 2),
    )
    assert first["captions"] == again["captions"] and first["image"] == again["image"]
    assert first["captions"] != other["captions"]
    for captions in first["captions"]:
        assert len(captions) == 2
        words = captions[0].split()
        assert words[0] == "a" and words[1] in ("small", "large") and words[2] in COLOURS and words[3] in SHAPES
        # the second caption names the same two shapes in the other order
        assert sorted(captions[0].split()) != [] and set(captions[0].split()) - {"left", "right", "above", "below"} == (
            set(captions[1].split()) - {"left", "right", "above", "below"}
        )


def test_synthetic_scene_pixels_match_the_caption():
    dataset = synthetic_scenes(30, 64, seed=3)
    for row in dataset:
        caption = row["captions"][0]
        if "to the left of" not in caption:
            continue
        colour = COLOURS[caption.split()[2]]
        image = PILImage.open(__import__("io").BytesIO(row["image"]["bytes"])).convert("RGB")
        left_half = {image.getpixel((x, y)) for x in range(32) for y in range(64)}
        assert colour in left_half  # the first-named shape is drawn in the left half
        return
    pytest.fail("no left/right scene among 30")


def test_imagefolder_round_trip(tmp_path):
    write_imagefolder(tmp_path / "scenes", {"train": 12, "test": 4}, image_size=32, seed=0)
    data = load_caption_data(CaptionDataConfig(imagefolder=str(tmp_path / "scenes"), validation_ratio=0.25))
    assert set(data.splits) == {"train", "validation", "test"}
    assert len(data.splits["test"]) == 4 and len(data.splits["train"]) + len(data.splits["validation"]) == 12
    assert all(len(captions) == 2 for captions in data.splits["train"]["captions"])


def test_flickr8k_layout_keeps_every_caption_and_the_standard_splits(tmp_path):
    root = flickr8k_folder(tmp_path)
    data = load_caption_data(CaptionDataConfig(captions_file=str(root / "Flickr8k.token.txt"), test_ratio=0.0), seed=0)
    assert set(data.splits) == {"train", "validation"}
    assert [Path(row["path"]).name for row in data.splits["validation"]["image"]] == ["img4.jpg", "img5.jpg"]
    assert data.splits["train"]["captions"][0] == [f"img0 caption number {k} ." for k in range(5)]


def test_caption_naming_a_missing_image_is_an_error_or_a_counted_skip(tmp_path):
    root = flickr8k_folder(tmp_path, extra_token_lines="ghost.jpg#0\ta caption for a missing image .\n")
    (root / "Flickr_8k.trainImages.txt").write_text("img0.jpg\nimg1.jpg\nghost.jpg\n")
    config = dict(captions_file=str(root / "Flickr8k.token.txt"), test_ratio=0.0)
    with pytest.raises(DataError, match=r"ghost\.jpg: image file not found.*bad_rows: skip"):
        load_caption_data(CaptionDataConfig(**config))
    data = load_caption_data(CaptionDataConfig(**config, bad_rows="skip"))
    assert len(data.splits["train"]) == 2 and data.skipped_rows == {"train split": 1}


@pytest.mark.parametrize("problem", ["truncated", "not an image", "empty"])
def test_broken_images_are_found_before_training(tmp_path, problem):
    root = flickr8k_folder(tmp_path)
    broken = root / "Flicker8k_Dataset" / "img1.jpg"
    if problem == "truncated":
        truncated_jpeg(broken)
    elif problem == "not an image":
        broken.write_text("just text")
    else:
        broken.write_bytes(b"")
    config = dict(captions_file=str(root / "Flickr8k.token.txt"), test_ratio=0.0)
    with pytest.raises(DataError, match=r"img1\.jpg"):
        load_caption_data(CaptionDataConfig(**config))
    data = load_caption_data(CaptionDataConfig(**config, bad_rows="skip"))
    assert len(data.splits["train"]) == 3 and data.skipped_rows == {"train split": 1}


def test_grayscale_rgba_and_cmyk_images_are_accepted(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rows = ["image,caption"]
    for mode, name in (("L", "gray.png"), ("RGBA", "alpha.png"), ("CMYK", "cmyk.jpg"), ("RGB", "rgb.jpg")):
        save_image(folder / name, mode)
        rows.append(f"{name},a {mode} picture")
    (tmp_path / "captions.txt").write_text("\n".join(rows) + "\n")
    data = load_caption_data(
        CaptionDataConfig(captions_file=str(tmp_path / "captions.txt"), images_dir=str(folder), validation_ratio=0.25)
    )
    assert sum(len(split) for split in data.splits.values()) == 4 and data.skipped_rows == {}


def test_kaggle_captions_txt_with_commas_inside_captions(tmp_path):
    folder = tmp_path / "Images"
    folder.mkdir()
    for i in range(4):
        save_image(folder / f"p{i}.jpg")
    text = "image,caption\n" + "".join(
        f'p{i}.jpg,"A dog, a cat, and a bird ."\np{i}.jpg,A man, smiling, waves .\n' for i in range(4)
    )
    (tmp_path / "captions.txt").write_text(text)
    data = load_caption_data(
        CaptionDataConfig(captions_file=str(tmp_path / "captions.txt"), validation_ratio=0.25, test_ratio=0.25)
    )
    assert sorted(len(split) for split in data.splits.values()) == [1, 1, 2]
    assert data.splits["train"]["captions"][0] == ["A dog, a cat, and a bird .", "A man, smiling, waves ."]


def test_karpathy_split_json(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    entries = []
    for i, split in enumerate(["train", "restval", "val", "test"]):
        save_image(folder / f"k{i}.jpg")
        sentences = [{"raw": f"caption {i} {k}", "tokens": ["caption", str(i), str(k)]} for k in range(3)]
        entries.append({"filename": f"k{i}.jpg", "split": split, "sentences": sentences})
    (tmp_path / "dataset_flickr8k.json").write_text(json.dumps({"images": entries, "dataset": "flickr8k"}))
    data = load_caption_data(
        CaptionDataConfig(captions_file=str(tmp_path / "dataset_flickr8k.json"), images_dir=str(folder))
    )
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 2, "validation": 1, "test": 1}
    assert data.splits["test"]["captions"][0] == ["caption 3 0", "caption 3 1", "caption 3 2"]


def test_hub_loader_through_a_local_folder_with_a_split_column(tmp_path):
    """nlphuji/flickr30k's layout: one split, a ``caption`` list column and a ``split`` column."""
    scenes = synthetic_scenes(9, 32, seed=0)
    features = Features({"image": Image(), "caption": List(Value("string")), "split": Value("string")})
    table = Dataset.from_dict(
        {"image": scenes["image"], "caption": scenes["captions"], "split": ["train"] * 5 + ["val"] * 2 + ["test"] * 2},
        features=features,
    )
    (tmp_path / "hub" / "data").mkdir(parents=True)
    table.to_parquet(tmp_path / "hub" / "data" / "test-00000-of-00001.parquet")
    data = load_caption_data(
        CaptionDataConfig(hub=str(tmp_path / "hub"), caption_column="caption", split_column="split")
    )
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 5, "validation": 2, "test": 2}
    assert data.splits["test"]["captions"] == scenes["captions"][7:]


def test_data_section_needs_exactly_one_source():
    with pytest.raises(DataError, match="exactly one"):
        CaptionDataConfig()
    with pytest.raises(DataError, match="exactly one"):
        CaptionDataConfig(builtin="synthetic_scenes", hub="x/y")
    with pytest.raises(DataError, match="unknown data set"):
        CaptionDataConfig(builtin="scenes")


def test_caption_tokenizer_word_level_with_min_frequency(tmp_path):
    config = CaptionTokenizerConfig(min_frequency=2, max_length=6)
    tokenizer = train_caption_tokenizer(config, ["A dog runs.", "a dog sits", "A cat, once."])
    assert [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id] == [
        0,
        1,
        2,
        3,
    ]
    assert set(tokenizer.get_vocab()) == {"<pad>", "<unk>", "<start>", "<end>", "a", "dog"}
    ids = tokenizer("A dog jumps!")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["<start>", "a", "dog", "<unk>", "<end>"]
    long = tokenizer("a dog a dog a dog a dog", truncation=True)["input_ids"]
    assert len(long) == 6 and long[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a dog"
    save_tokenizer(tokenizer, config, tmp_path)
    assert load_saved_tokenizer(tmp_path, config)("A dog jumps!")["input_ids"] == ids
    with pytest.raises(DataError, match="other settings"):
        load_saved_tokenizer(tmp_path, CaptionTokenizerConfig(min_frequency=1))
    with pytest.raises(RecipeError):
        CaptionTokenizerConfig(max_length=2)


def test_the_caption_tokenizer_is_reused_only_for_the_same_train_captions(tmp_path):
    from types import SimpleNamespace

    from hfnlp.tasks.image_captioning import ImageCaptioning
    from hfnlp.training.run_folder import RunFolder

    def prepare(captions: list[list[str]]):
        train = Dataset.from_dict({"captions": captions})
        recipe = SimpleNamespace(
            tokenizer=CaptionTokenizerConfig(min_frequency=1), model={}, data=SimpleNamespace(image_size=32)
        )
        return ImageCaptioning().prepare_processor(
            recipe, RunFolder(tmp_path), SimpleNamespace(splits={"train": train})
        )

    captions = [["a dog runs", "a brown dog"], ["a cat sits"]]
    first = prepare(captions)
    assert prepare(captions).tokenizer.get_vocab() == first.tokenizer.get_vocab()
    with pytest.raises(DataError, match="vocabulary was trained on other training data"):
        prepare([["a dog runs", "a brown dog"], ["a cat sleeps"]])
