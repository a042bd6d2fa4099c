"""What the server runs: one predictor per hfnlp task, built from a saved model folder, run folder or Hub id.

A predictor splits inference in two so that requests can share a forward pass: :meth:`Predictor.forward` runs the
model on the inputs of every request of a batch at once, :meth:`Predictor.finish` shapes one input's raw output
for its own request (its own ``top_k``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hfnlp.errors import HfnlpError
from hfnlp.pipelines.loading import (
    check_model_folder,
    load_image_classifier,
    model_kind,
    resolve_model_folder,
)
from hfnlp.serving.server import BACKENDS


class Predictor(Protocol):
    """A loaded model for one task: ``forward`` batches of inputs, ``finish`` one output for its request."""

    task: str
    backend: str

    def forward(self, inputs: Sequence[Any]) -> list[Any]:
        """The raw output for each of ``inputs`` (texts or RGB images), in order, from one pass of the model."""
        ...

    def finish(self, output: Any, top_k: int | None) -> Any:
        """One raw output as the API returns it (a classifier's ``top_k`` labels with scores; a caption)."""
        ...


def ranked(probabilities: np.ndarray, labels: dict[int, str], top_k: int | None) -> list[dict[str, Any]]:
    """The ``top_k`` (default 1) most probable labels with their probabilities, best first; ties keep label order,
    so that the first is the label ``argmax`` picks, as ``hfnlp predict`` reports it."""
    order = np.argsort(-probabilities, kind="stable")[: top_k or 1]
    return [{"label": labels[int(i)], "score": float(probabilities[i])} for i in order]


class TextClassifierPredictor:
    """A text classifier: the saved tokenizer, then the model's logits from PyTorch or from an ONNX graph."""

    task = "text-classification"

    def __init__(
        self, tokenizer: Any, logits: Callable[[dict[str, Any]], np.ndarray], labels: dict[int, str], backend: str
    ) -> None:
        from hfnlp.pipelines.text_classification import batch_encoder

        self.tokenizer = tokenizer
        self.encode = batch_encoder(tokenizer)
        self.logits = logits
        self.labels = labels
        self.backend = backend
        self._keep: list[Any] = []  # what must live as long as the predictor (an exported graph's folder)

    def forward(self, inputs: Sequence[str]) -> list[np.ndarray]:
        """Each text's class probabilities, encoded and softmaxed as :func:`hfnlp.pipelines.text_classification.
        classify` does, so a text alone in its batch gets the score ``hfnlp predict`` prints."""
        from hfnlp.pipelines.text_classification import softmax

        return list(softmax(self.logits(self.encode(inputs))))

    def finish(self, output: np.ndarray, top_k: int | None) -> list[dict[str, Any]]:
        """The ``top_k`` labels of one text."""
        return ranked(output, self.labels, top_k)


class ImageClassifierPredictor:
    """An image classifier, through transformers' ``image-classification`` pipeline."""

    task = "image-classification"
    backend = "torch"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.num_labels = pipeline.model.config.num_labels

    def forward(self, inputs: Sequence[Any]) -> list[list[dict[str, Any]]]:
        """Every label of each image, best first."""
        outputs = self.pipeline(list(inputs), top_k=self.num_labels, batch_size=len(inputs))
        return [[{"label": row["label"], "score": float(row["score"])} for row in output] for output in outputs]

    def finish(self, output: list[dict[str, Any]], top_k: int | None) -> list[dict[str, Any]]:
        """The ``top_k`` (default 1) labels of one image."""
        return output[: top_k or 1]


class CaptionerPredictor:
    """An image captioner, through hfnlp's ``image-captioning`` pipeline (its saved generation settings)."""

    task = "image-captioning"
    backend = "torch"

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def forward(self, inputs: Sequence[Any]) -> list[str]:
        """The caption of each image."""
        return [output[0]["generated_text"] for output in self.pipeline(list(inputs))]

    def finish(self, output: str, top_k: int | None) -> dict[str, str]:
        """One image's caption as ``{"generated_text": ...}`` (``top_k`` does not apply)."""
        return {"generated_text": output}


def load_predictor(model: str | Path, backend: str = "torch", trust_remote_code: bool = False) -> Predictor:
    """The predictor for the model in a saved model folder, run folder or Hub id, for the task its ``config.json``
    names (``model_type``).

    Raises:
        HfnlpError: The model cannot be found or loaded, is of no hfnlp task, or cannot use ``backend``.
    """
    if backend not in BACKENDS:
        raise HfnlpError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    folder = resolve_model_folder(model)
    # A readable config.json with a model_type, and weights; each task's loader checks its processors below.
    check_model_folder(folder, trust_remote_code=trust_remote_code, with_processors=False)
    kind = model_kind(folder)
    if backend == "onnx" and kind.task != TextClassifierPredictor.task:
        raise HfnlpError(f"--backend onnx serves text classifiers only; {folder} holds a {kind.task} model")
    if kind.task == TextClassifierPredictor.task:
        return _text_classifier(folder, backend, trust_remote_code)
    if kind.task == CaptionerPredictor.task:
        from hfnlp.pipelines.loading import load_captioner

        return CaptionerPredictor(load_captioner(folder, trust_remote_code=trust_remote_code))
    return ImageClassifierPredictor(load_image_classifier(folder, trust_remote_code=trust_remote_code))


def _text_classifier(folder: Path, backend: str, trust_remote_code: bool) -> Predictor:
    import torch

    from hfnlp.pipelines.text_classification import load_text_model

    classifier = load_text_model(folder, trust_remote_code=trust_remote_code)
    labels = {int(i): name for i, name in classifier.model.config.id2label.items()}
    if backend == "torch":
        network = classifier.model

        def torch_logits(batch: dict[str, Any]) -> np.ndarray:
            with torch.inference_mode():
                inputs = {key: value.to(network.device) for key, value in batch.items()}
                return network(**inputs).logits.float().cpu().numpy()

        return TextClassifierPredictor(classifier.tokenizer, torch_logits, labels, backend)
    return _onnx_text_classifier(folder, classifier.tokenizer, labels)


def _onnx_text_classifier(folder: Path, tokenizer: Any, labels: dict[int, str]) -> Predictor:
    import onnxruntime

    from hfnlp.models.onnx_export import ONNX_PATH, export_onnx

    # A graph `hfnlp export --onnx` wrote (and checked) is used as it is; otherwise one is exported and checked now
    # into a temporary folder, never into the model folder (a Hub cache snapshot, someone else's folder).
    graph = folder / ONNX_PATH
    keep = None
    if not graph.is_file():
        keep = tempfile.TemporaryDirectory(prefix="hfnlp-serve-onnx-")
        try:
            graph = export_onnx(folder, Path(keep.name) / "model.onnx").path
        except HfnlpError as error:
            keep.cleanup()
            raise HfnlpError(f"--backend onnx: {error}") from error
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])

    def onnx_logits(batch: dict[str, Any]) -> np.ndarray:
        inputs = {name: batch[name].numpy().astype(np.int64) for name in ("input_ids", "attention_mask")}
        return session.run(None, inputs)[0]

    predictor = TextClassifierPredictor(tokenizer, onnx_logits, labels, "onnx")
    predictor._keep.append(keep)
    return predictor
