"""Gradio pages for hfnlp models: text classification (label probabilities and the text highlighted by attribution),
image classification (class probabilities) and image captioning (the caption and where each word looked).

Self-contained on purpose: ``hfnlp demo --space`` copies this file into a Hugging Face Space as ``demo_app.py``,
where hfnlp is not installed, so it imports only gradio, numpy, Pillow and transformers. The pages take loaded
pipelines (:func:`load_pipeline` loads them with transformers alone) and, for text, the attribution function.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

TASKS = ("text-classification", "image-classification", "image-captioning")
TOP_CLASSES = 10
# How much of an overlay is the attention heatmap (the rest is the photo).
OVERLAY_OPACITY = 0.55

Explainer = Callable[[Any, Any, str, Any], Any]  # attribution.explain_text(model, tokenizer, text, target)


def load_pipeline(task: str, folder: str | Path) -> Any:
    """The transformers pipeline of ``task`` for a saved model folder, from the folder's own code
    (``trust_remote_code=True``): what a Space runs, with no hfnlp installed."""
    from transformers import pipeline

    if task == "image-captioning":  # the folder names its own (custom) pipeline
        return pipeline(model=str(folder), trust_remote_code=True)
    return pipeline(task, model=str(folder), trust_remote_code=True)


def highlights(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, float | None]]:
    """``text`` cut into ``(piece, score)`` for ``gr.HighlightedText``: each attributed span with its score scaled
    into [-1, 1] by the largest magnitude, the text between spans with ``None``, so that the page shows the whole
    text as written."""
    largest = max((abs(span["score"]) for span in spans), default=0.0) or 1.0
    pieces: list[tuple[str, float | None]] = []
    done = 0
    for span in sorted(spans, key=lambda span: span["start"]):
        if span["start"] > done:
            pieces.append((text[done : span["start"]], None))
        pieces.append((text[span["start"] : span["end"]], round(span["score"] / largest, 4)))
        done = span["end"]
    if done < len(text):
        pieces.append((text[done:], None))
    return pieces


def text_predictor(
    classifier: Any, explainer: Explainer
) -> Callable[[str], tuple[dict[str, float], list[tuple[str, float | None]]]]:
    """What the text page computes for a text: every label's probability, and the text highlighted by how much each
    token raised (positive) or lowered (negative) the top label's probability."""

    def predict(text: str) -> tuple[dict[str, float], list[tuple[str, float | None]]]:
        if not text or not text.strip():
            return {}, []
        scores = classifier(text, top_k=None)
        explanation = explainer(classifier.model, classifier.tokenizer, text, scores[0]["label"])
        return {row["label"]: float(row["score"]) for row in scores}, highlights(text, explanation.spans)

    return predict


def image_predictor(classifier: Any) -> Callable[[Image.Image | None], dict[str, float]]:
    """What the image-classification page computes: the probabilities of the top classes of an image."""

    def predict(image: Image.Image | None) -> dict[str, float]:
        if image is None:
            return {}
        return {row["label"]: float(row["score"]) for row in classifier(image.convert("RGB"), top_k=TOP_CLASSES)}

    return predict


def attention_overlay(image: Image.Image, attention: np.ndarray) -> Image.Image:
    """``image`` tinted red where the ``attention`` map (height, width, over the encoder's feature grid) is high."""
    weights = attention.astype(np.float32) - attention.min()
    weights = weights / weights.max() if weights.max() > 0 else weights
    heat = Image.fromarray((weights * 255).astype(np.uint8)).resize(image.size, Image.BILINEAR)
    heat = np.asarray(heat, dtype=np.float32)[..., None] / 255
    photo = np.asarray(image.convert("RGB"), dtype=np.float32)
    red = np.zeros_like(photo)
    red[..., 0] = 255
    blended = photo * (1 - OVERLAY_OPACITY * heat) + red * OVERLAY_OPACITY * heat
    return Image.fromarray(blended.clip(0, 255).astype(np.uint8))


def caption_predictor(
    captioner: Any,
) -> Callable[[Image.Image | None], tuple[str, list[tuple[Image.Image, str]]]]:
    """What the captioning page computes: the caption of an image and, per word, the image tinted where the model
    looked while writing it."""

    def predict(image: Image.Image | None) -> tuple[str, list[tuple[Image.Image, str]]]:
        if image is None:
            return "", []
        image = image.convert("RGB")
        result = captioner(image, output_attentions=True)
        result = result[0] if isinstance(result, list) else result
        overlays = [
            (attention_overlay(image, attention), word)
            for word, attention in zip(result["words"], result["attention"], strict=True)
        ]
        return result["generated_text"], overlays

    return predict


def build_demo(task: str, pipe: Any, title: str, explainer: Explainer | None = None) -> gr.Blocks:
    """The page of ``task`` (one of :data:`TASKS`) for the loaded pipeline ``pipe``; a text page needs the
    ``explainer`` that attributes its predictions."""
    if task not in TASKS:
        raise ValueError(f"no demo page for task {task!r}; pages exist for {', '.join(TASKS)}")
    # No telemetry: a demo may run where nothing outside can be reached, and should not try.
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"# {title}")
        if task == "text-classification":
            if explainer is None:
                raise ValueError("a text-classification page needs an explainer")
            with gr.Row():
                with gr.Column():
                    text = gr.Textbox(label="Text", lines=4, elem_id="text")
                    button = gr.Button("Classify", variant="primary", elem_id="submit")
                with gr.Column():
                    label = gr.Label(label="Label", num_top_classes=TOP_CLASSES, elem_id="label")
                    highlighted = gr.HighlightedText(
                        label="Why: tokens that raised (positive) or lowered (negative) the top label",
                        elem_id="attributions",
                    )
            predict = text_predictor(pipe, explainer)
            button.click(predict, inputs=text, outputs=[label, highlighted], api_name="classify")
            text.submit(predict, inputs=text, outputs=[label, highlighted])
        elif task == "image-classification":
            with gr.Row():
                image = gr.Image(label="Image", type="pil", elem_id="image")
                label = gr.Label(label="Class", num_top_classes=TOP_CLASSES, elem_id="label")
            button = gr.Button("Classify", variant="primary", elem_id="submit")
            button.click(image_predictor(pipe), inputs=image, outputs=label, api_name="classify")
        else:
            with gr.Row():
                image = gr.Image(label="Image", type="pil", elem_id="image")
                with gr.Column():
                    caption = gr.Textbox(label="Caption", elem_id="caption")
                    gallery = gr.Gallery(label="Where each word looked", columns=4, elem_id="attention")
            button = gr.Button("Caption", variant="primary", elem_id="submit")
            button.click(caption_predictor(pipe), inputs=image, outputs=[caption, gallery], api_name="caption")
    return demo


__all__ = [
    "TASKS",
    "attention_overlay",
    "build_demo",
    "caption_predictor",
    "highlights",
    "image_predictor",
    "load_pipeline",
    "text_predictor",
]
