"""``load_image`` on what real folders hold: 16-bit scans, palette images with transparency, empty files,
decompression bombs and images too large to train on, each converted to 8-bit RGB or refused by name."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hfnlp.data.images import MAX_IMAGE_PIXELS, load_image
from hfnlp.errors import DataError


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_16_bit_grayscale_maps_onto_8_bits_without_stretching(tmp_path: Path) -> None:
    samples = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16)  # a dark image stays dark
    path = tmp_path / "scan16.png"
    Image.fromarray(samples).save(path)
    assert Image.open(path).mode.startswith("I")  # really stored with 16-bit samples
    image = load_image(path)
    assert image.mode == "RGB"
    assert np.asarray(image)[..., 0].tolist() == [[0, 64], [128, 255]]


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (2, 1), (255, 0, 0, 255))
    image.putpixel((1, 0), (0, 0, 0, 0))
    path = tmp_path / "palette.png"
    image.quantize(2).save(path)
    assert Image.open(path).mode == "P"
    loaded = load_image(path)
    assert loaded.mode == "RGB" and loaded.getpixel((0, 0))[0] > 200


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    # 100,000 × 100,000 pixels declared in a file of a few dozen bytes: never decoded.
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0))
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(b"IEND", b""))
    with pytest.raises(DataError, match=r"bomb\.png: image too large"):
        load_image(path)


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    width, height = 9000, MAX_IMAGE_PIXELS // 9000 + 1
    path = tmp_path / "huge.png"
    Image.new("1", (width, height)).save(path)  # 1 bit per pixel: a small file, but 64 M pixels once decoded
    with pytest.raises(
        DataError, match=rf"huge\.png: image of {width}×{height} pixels exceeds the limit of 64,000,000"
    ):
        load_image(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty file \(0 bytes\)"),
        (b"GIF89a but nothing else", "broken or truncated image|not an image file"),
        (b"hello, not an image", "not an image file PIL can read"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"photo\.jpg: ({message})"):
        load_image(path)
    with pytest.raises(DataError, match="image file not found"):
        load_image(tmp_path / "missing.jpg")
