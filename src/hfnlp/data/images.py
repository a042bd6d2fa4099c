"""Opening images safely: clear errors for broken files, every colour mode converted to RGB, size guard.

Data sets hold images undecoded (``IMAGE_FEATURE`` cells ``{"path", "bytes"}``) and decode them when used.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hfnlp.errors import DataError

IMAGE_FEATURE = datasets.Image(decode=False)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Far above any photo users train on (≈ 8000 × 8000), far below a decompression bomb's size.
MAX_IMAGE_PIXELS = 64_000_000


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has an image extension (``.DS_Store``, ``Thumbs.db``, notes… do not)."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def load_image(
    source: str | Path | bytes | Image.Image, max_pixels: int = MAX_IMAGE_PIXELS, name: str | None = None
) -> Image.Image:
    """Open ``source`` fully as an RGB image, or raise :class:`DataError` naming the file (or ``name``) and the
    problem.

    Grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images are converted to 8-bit RGB;
    EXIF orientation is applied.
    """
    name = name or (str(source) if isinstance(source, str | Path) else "<image>")
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise DataError(f"{name}: image file not found")
            if path.stat().st_size == 0:
                raise DataError(f"{name}: empty file (0 bytes)")
            try:
                source = path.read_bytes()
            except OSError as error:  # e.g. no permission to read it
                raise DataError(f"{name}: cannot be read ({error})") from error
        try:
            image = Image.open(io.BytesIO(source))
        except UnidentifiedImageError as error:
            raise DataError(f"{name}: not an image file PIL can read") from error
        except Image.DecompressionBombError as error:
            raise DataError(f"{name}: image too large ({error})") from error
        except OSError as error:  # e.g. a JPEG cut inside its header: "Truncated File Read"
            raise DataError(f"{name}: broken or truncated image ({error})") from error
    width, height = image.size
    if width * height > max_pixels:
        raise DataError(f"{name}: image of {width}×{height} pixels exceeds the limit of {max_pixels:,}")
    try:
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{name}: broken or truncated image ({error})") from error


def image_source(image: dict[str, Any]) -> str | bytes:
    """What :func:`load_image` opens for an undecoded image cell: its bytes if it holds them, else its path."""
    return image["bytes"] if image.get("bytes") is not None else image["path"]


def image_name(image: dict[str, Any] | None, row: int) -> str:
    """How errors name an image cell: its path, else its row (counted from 1)."""
    return (image or {}).get("path") or f"row {row + 1}"


def open_image(image: dict[str, Any] | str | Path | bytes, name: str | None = None) -> Image.Image:
    """:func:`load_image` of an undecoded image cell, a path or bytes; errors name ``name``, else the file."""
    if isinstance(image, dict):
        return load_image(image_source(image), name=name or image.get("path"))
    return load_image(image, name=name)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (16-bit scaled down, transparency composited on white)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit samples map linearly onto 8 bits (65535 → 255), so a dark image stays dark. A 32-bit "I" image
        # holding values past 16 bits has no fixed range: it is scaled by its own peak.
        array = np.asarray(image, dtype=np.float64)
        full_scale = 65535.0 if array.max() <= 65535 else array.max()
        image = Image.fromarray(np.round(array / full_scale * 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")
