"""A captioned synthetic-scenes data set: two coloured shapes of two sizes, side by side or one above the other.

Each scene gets two reference captions, one naming each shape first, e.g. "a small red circle to the left of a
large blue square" and "a large blue square to the right of a small red circle". Everything is drawn with PIL
from a seeded random generator, so the same arguments always give the same images and captions: the
quickstart and the tests need no download.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage
from PIL import ImageDraw

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
    "purple": (140, 60, 190),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 0.2, "large": 0.36}  # the shape's extent as a fraction of the image side
# relation of the first shape to the second, and its inverse
RELATIONS = {"to the left of": "to the right of", "above": "below"}
CAPTION_FEATURES = Features({"image": Image(decode=False), "captions": List(Value("string"))})


def draw_scene(rng: random.Random, image_size: int) -> tuple[PILImage.Image, list[str]]:
    """One scene and its two reference captions, drawn with ``rng``."""
    image = PILImage.new("RGB", (image_size, image_size), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    objects = rng.sample([(colour, shape) for colour in COLOURS for shape in SHAPES], 2)
    sizes = [rng.choice(list(SIZES)) for _ in objects]
    relation = rng.choice(list(RELATIONS))
    half = image_size / 2
    phrases = []
    for index, ((colour, shape), size) in enumerate(zip(objects, sizes, strict=True)):
        extent = SIZES[size] * image_size
        # the first shape goes in the left (or top) half, the second in the other half
        along = rng.uniform(index * half + extent / 2 + 1, (index + 1) * half - extent / 2 - 1)
        across = rng.uniform(extent / 2 + 1, image_size - extent / 2 - 1)
        x, y = (along, across) if relation == "to the left of" else (across, along)
        _draw_shape(draw, shape, x, y, extent, COLOURS[colour])
        phrases.append(f"a {size} {colour} {shape}")
    captions = [f"{phrases[0]} {relation} {phrases[1]}", f"{phrases[1]} {RELATIONS[relation]} {phrases[0]}"]
    return image, captions


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, extent: float, fill: tuple) -> None:
    r = extent / 2
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)


def synthetic_scenes(num_scenes: int = 3000, image_size: int = 96, seed: int = 0) -> Dataset:
    """``num_scenes`` scenes as a data set with ``image`` (PNG bytes) and ``captions`` (two per scene)."""
    rng = random.Random(seed)
    images, captions = [], []
    for _ in range(num_scenes):
        image, scene_captions = draw_scene(rng, image_size)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        images.append({"bytes": buffer.getvalue(), "path": None})
        captions.append(scene_captions)
    return Dataset.from_dict({"image": images, "captions": captions}, features=CAPTION_FEATURES)


def write_imagefolder(folder: str | Path, splits: dict[str, int], image_size: int = 96, seed: int = 0) -> Path:
    """Write scenes as an ``imagefolder`` data set: ``folder/<split>/*.png`` and a ``metadata.jsonl`` per split
    (``{"file_name": ..., "captions": [...]}``); ``splits`` maps split names to scene counts."""
    folder = Path(folder)
    rng = random.Random(seed)
    for split, count in splits.items():
        split_dir = folder / split
        split_dir.mkdir(parents=True, exist_ok=True)
        with (split_dir / "metadata.jsonl").open("w", encoding="utf-8") as metadata:
            for index in range(count):
                image, captions = draw_scene(rng, image_size)
                name = f"scene_{index:05d}.png"
                image.save(split_dir / name)
                metadata.write(json.dumps({"file_name": name, "captions": captions}) + "\n")
    return folder
