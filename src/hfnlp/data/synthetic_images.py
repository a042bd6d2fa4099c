"""A generated image-folder data set for tests and demos: coloured shapes on noisy backgrounds.

Each class is one shape (circle, square, triangle, …) in a class-typical colour, at a random position, size
and shade, on a random noise background, so a small network learns it in a few steps but not in zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES: dict[str, tuple[int, int, int]] = {
    "circle": (220, 60, 60),
    "square": (60, 200, 60),
    "triangle": (60, 90, 230),
    "cross": (230, 200, 40),
}


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One ``size``×``size`` RGB image of ``shape`` (a key of :data:`SHAPES`)."""
    background = rng.integers(0, 120, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, mode="RGB")
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.2, 0.35) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    colour = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in SHAPES[shape])
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    else:
        width = radius / 2.5
        draw.rectangle((cx - radius, cy - width, cx + radius, cy + width), fill=colour)
        draw.rectangle((cx - width, cy - radius, cx + width, cy + radius), fill=colour)
    return image


def write_shapes_folder(
    root: str | Path,
    per_class: int = 20,
    size: int = 48,
    classes: tuple[str, ...] = ("circle", "square", "triangle"),
    seed: int = 0,
) -> Path:
    """Write ``root/<shape>/<index>.jpg`` (an image-folder layout) and return ``root``."""
    unknown = sorted(set(classes) - set(SHAPES))
    if unknown:
        raise ValueError(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for shape in classes:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            draw_shape(shape, size, rng).save(folder / f"{index:03d}.jpg", quality=90)
    return root
