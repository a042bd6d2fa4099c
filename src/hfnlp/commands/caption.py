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
    generation = parser.add_argument_group(
        "generation", "override the model's generation_config.json (default: its settings, e.g. beam search)"
    )
    generation.add_argument("--num-beams", type=int, help="beam size, at least 1 (1: greedy, or sampling)")
    generation.add_argument("--max-new-tokens", type=int, help="longest caption in words (plus the end word)")
    generation.add_argument("--do-sample", action="store_true", help="sample each word instead of the likeliest")
    generation.add_argument("--temperature", type=float, help="with --do-sample: above 0; higher is more random")
    generation.add_argument("--top-k", type=int, help="with --do-sample: sample among the K likeliest words")
    generation.add_argument("--top-p", type=float, help="with --do-sample: the likeliest words of mass P, 0 < P <= 1")
    generation.add_argument("--no-repeat-ngram-size", type=int, help="never repeat an n-gram of this many words")
    generation.add_argument("--repetition-penalty", type=float, help="above 0; over 1 discourages repeated words")
    generation.add_argument("--length-penalty", type=float, help="beam-search length penalty (1.0 = average log-prob)")
    generation.add_argument("--seed", type=int, help="random seed, for reproducible sampling (0 or more)")
    parser.add_argument(
        "--attention-png",
        help="write the image with each word's attention map here (several images: NAME-1.png, NAME-2.png, ...)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="run the model folder's own code")
    parser.set_defaults(handler=caption)


def caption(args: argparse.Namespace) -> int:
    from transformers import set_seed

    from hfnlp.data.images import open_image
    from hfnlp.pipelines.loading import load_captioner

    settings = generation_settings(args)
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
    if args.seed is not None:
        set_seed(args.seed)
    outputs = [
        captioner(image, output_attentions=attention_png is not None, generate_kwargs=settings)[0] for image in images
    ]
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


def generation_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``generate`` settings the options give (only those given), each checked: a bad value is one line."""
    at_least_one(args.num_beams, "--num-beams")
    at_least_one(args.max_new_tokens, "--max-new-tokens")
    at_least_one(args.top_k, "--top-k")
    at_least_one(args.no_repeat_ngram_size, "--no-repeat-ngram-size")
    finite(args.length_penalty, "--length-penalty")
    for value, option in ((args.temperature, "--temperature"), (args.repetition_penalty, "--repetition-penalty")):
        finite(value, option)
        if value is not None and value <= 0:
            raise HfnlpError(f"{option} must be above 0, got {value}")
    finite(args.top_p, "--top-p")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise HfnlpError(f"--top-p must be above 0 and at most 1, got {args.top_p}")
    if args.seed is not None and args.seed < 0:
        raise HfnlpError(f"--seed must be 0 or more, got {args.seed}")
    sampling = {"--temperature": args.temperature, "--top-k": args.top_k, "--top-p": args.top_p}
    given = [option for option, value in sampling.items() if value is not None]
    if given and not args.do_sample:  # generate would ignore them, with only a warning
        raise HfnlpError(f"{', '.join(given)} only apply with --do-sample")
    settings = {
        "num_beams": args.num_beams,
        "max_new_tokens": args.max_new_tokens,
        "do_sample": args.do_sample or None,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "repetition_penalty": args.repetition_penalty,
        "length_penalty": args.length_penalty,
    }
    return {key: value for key, value in settings.items() if value is not None}


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
