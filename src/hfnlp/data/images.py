"""Opening images safely: clear errors for broken files, every colour mode converted to RGB, size guard."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hfnlp.errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Far above any photo users train on (≈ 8000 × 8000), far below a decompression bomb's size.
MAX_IMAGE_PIXELS = 64_000_000


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has an image extension (``.DS_Store``, ``Thumbs.db``, notes… do not)."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def load_image(source: str | Path | bytes | Image.Image, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Open ``source`` fully as an RGB image, or raise :class:`DataError` naming the file and the problem.

    Grayscale, palette, RGBA/LA (composited on white), CMYK and 16-bit images are converted to 8-bit RGB;
    EXIF orientation is applied.
    """
    name = str(source) if isinstance(source, str | Path) else "<image>"
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise DataError(f"{name}: image file not found")
            if path.stat().st_size == 0:
                raise DataError(f"{name}: empty file (0 bytes)")
            source = path.read_bytes()
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
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{name}: broken or truncated image ({error})") from error
    return to_rgb(ImageOps.exif_transpose(image))


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
