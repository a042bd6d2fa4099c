"""``hfnlp caption MODEL image.jpg ...``: a caption per image; ``--attention-png`` shows where each word looked."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from hfnlp.commands._checks import at_least_one, check_output_file, finite
from hfnlp.errors import HfnlpError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("caption", help="caption images with a saved image-captioning model")
    parser.add_argument("model", help="saved model folder, run folder, or Hub id")
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument(
        "--num-beams", type=int, help="beam size, at least 1 (default: the model's generation_config.json)"
    )
    parser.add_argument("--max-new-tokens", type=int, help="longest caption in words (plus the end word)")
    parser.add_argument("--length-penalty", type=float, help="beam-search length penalty (1.0 = average log-prob)")
    parser.add_argument(
        "--attention-png",
        help="write the image with each word's attention map here (several images: NAME-1.png, NAME-2.png, ...)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="run the model folder's own code")
    parser.set_defaults(handler=caption)


def caption(args: argparse.Namespace) -> int:
    from hfnlp.data.images import open_image
    from hfnlp.pipelines.loading import load_captioner

    at_least_one(args.num_beams, "--num-beams")
    at_least_one(args.max_new_tokens, "--max-new-tokens")
    finite(args.length_penalty, "--length-penalty")
    attention_png = check_output_file(args.attention_png, "--attention-png") if args.attention_png else None
    images, problems = [], []
    for path in args.images:  # every missing or broken file named at once, before the model loads
        try:
            images.append(open_image(path))
        except HfnlpError as error:
            problems.append(str(error))
    if problems:
        raise HfnlpError(f"{len(problems)} of {len(args.images)} image(s) cannot be captioned: {'; '.join(problems)}")
    captioner = load_captioner(args.model, trust_remote_code=args.trust_remote_code)
    settings = {
        key: value
        for key, value in (
            ("num_beams", args.num_beams),
            ("max_new_tokens", args.max_new_tokens),
            ("length_penalty", args.length_penalty),
        )
        if value is not None
    }
    outputs = [captioner(image, output_attentions=attention_png is not None, **settings)[0] for image in images]
    for path, output in zip(args.images, outputs, strict=True):
        print(f"{path}\t{output['generated_text']}")
    if attention_png is not None:
        for index, (image, output) in enumerate(zip(images, outputs, strict=True), start=1):
            target = attention_png
            if len(images) > 1:
                target = target.with_name(f"{target.stem}-{index}{target.suffix}")
            save_attention_figure(image, output["words"], output["attention"], target)
            print(f"attention maps written to {target}")
    return 0


def save_attention_figure(image: Any, words: list[str], attention: np.ndarray, path: str | Path) -> None:
    """Save the image, then one panel per word with its attention map (upsampled) laid over the image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    columns = min(5, len(words) + 1)
    rows = math.ceil((len(words) + 1) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("input")
    for axis, word, weights in zip(axes.flat[1:], words, attention, strict=False):
        weights = np.asarray(weights, dtype=np.float32)
        peak = float(weights.max()) or 1.0
        heat = Image.fromarray(np.uint8(255 * weights / peak)).resize(image.size, Image.BILINEAR)
        axis.imshow(image)
        axis.imshow(np.asarray(heat), cmap="jet", alpha=0.5)
        axis.set_title(word)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
