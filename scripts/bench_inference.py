"""CPU inference benchmark of a text classifier: PyTorch eager vs onnxruntime vs the transformers pipeline.

    python scripts/bench_inference.py                       # trains a small quickstart BiLSTM first
    python scripts/bench_inference.py --model runs/quickstart --threads 2

Prints a Markdown table: throughput (texts/s, tokenization included) at batch sizes 1 / 32 / 256 and the latency
of one batch (p50 / p90; at batch size 1 that is the single-text latency). Texts are the run's own test split.
Without ``--model`` a quickstart-like model (``recipes/quickstart.yaml``, ``--train-steps`` steps) is trained
into a temporary folder. The ONNX graph is exported (``hfnlp export RUN --onnx``) if the folder has none.
The machine's load average is printed with the table: on a shared machine, numbers move with other jobs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from hfnlp.cli import main as hfnlp_main
from hfnlp.data.text import load_text_classification
from hfnlp.hub import export_model_folder, locate_model_folder
from hfnlp.models.onnx_export import ONNX_PATH, load_text_classifier_model
from hfnlp.pipelines.text_classification import load_text_classifier
from hfnlp.tasks import load_recipe
from hfnlp.tokenization.text import load_saved_tokenizer

BATCH_SIZES = (1, 32, 256)
QUICKSTART = Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml"


def train_quickstart(output_dir: Path, steps: int) -> Path:
    """Train the quickstart recipe for ``steps`` steps (no evaluation during training) into ``output_dir``."""
    overrides = [f"output_dir={output_dir}", f"training.max_steps={steps}", "training.eval_strategy='no'"]
    overrides += ["training.report_to=[]", "training.disable_tqdm=true"]
    args = ["train", str(QUICKSTART)] + [item for override in overrides for item in ("--set", override)]
    if hfnlp_main(args) != 0:
        raise SystemExit("training the quickstart model failed")
    return output_dir


def timed_batches(run_batch: Callable[[list[str]], object], texts: Sequence[str], batch_size: int) -> list[float]:
    """Seconds taken by each batch of ``texts`` (after one warm-up batch)."""
    run_batch(list(texts[:batch_size]))
    durations = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        began = time.perf_counter()
        run_batch(batch)
        durations.append(time.perf_counter() - began)
    return durations


def backends(model_dir: Path, threads: int) -> dict[str, Callable[[list[str]], object]]:
    """One callable per backend: texts in, predictions out, tokenization included."""
    tokenizer = load_saved_tokenizer(model_dir)
    model = load_text_classifier_model(model_dir)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model_dir / ONNX_PATH), options, providers=["CPUExecutionProvider"])
    classifier = load_text_classifier(model_dir)

    def eager(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            return model(**batch).logits.argmax(-1).numpy()

    def onnx(texts: list[str]) -> np.ndarray:
        batch = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
        inputs = {name: batch[name].astype(np.int64) for name in ("input_ids", "attention_mask")}
        return session.run(["logits"], inputs)[0].argmax(-1)

    def pipeline(texts: list[str]) -> list:
        return classifier(texts, batch_size=len(texts), truncation=True)

    return {"PyTorch eager": eager, "onnxruntime": onnx, "transformers pipeline": pipeline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="run folder or its model/ (default: train a small quickstart model)")
    parser.add_argument("--train-steps", type=int, default=150, help="training steps without --model")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch and onnxruntime")
    parser.add_argument("--texts", type=int, default=1024, help="texts per measurement (batch size 1: a quarter)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as scratch:
        path = Path(args.model) if args.model else train_quickstart(Path(scratch) / "run", args.train_steps)
        model_dir, card_source = locate_model_folder(path)
        if not (model_dir / ONNX_PATH).is_file():
            if card_source is None:
                raise SystemExit(f"{model_dir} has no {ONNX_PATH}; export it with hfnlp export RUN --onnx")
            export_model_folder(card_source.run_dir, onnx=True)
        recipe = load_recipe(model_dir / "recipe.yaml")
        texts = list(load_text_classification(recipe.data, seed=recipe.seed).splits["test"]["text"])
        texts = (texts * (args.texts // len(texts) + 1))[: args.texts]
        load_before = os.getloadavg()
        rows = []
        for name, run_batch in backends(model_dir, args.threads).items():
            for batch_size in BATCH_SIZES:
                sample = texts if batch_size > 1 else texts[: max(1, args.texts // 4)]
                durations = timed_batches(run_batch, sample, batch_size)
                p50 = statistics.median(durations) * 1000
                p90 = float(np.percentile(durations, 90)) * 1000
                rows.append((name, batch_size, len(sample) / sum(durations), p50, p90))
        load_after = os.getloadavg()

    print(f"\nmodel: {model_dir} ({recipe.model['type']}; max_length {recipe.tokenizer.max_length})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} thread(s)")
    print(f"load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    print(f"texts: {len(texts)} of the test split (batch size 1: {max(1, args.texts // 4)}), tokenization included\n")
    print("| backend | batch size | texts/s | ms per batch (p50) | ms per batch (p90) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, batch_size, throughput, p50, p90 in rows:
        print(f"| {name} | {batch_size} | {throughput:,.0f} | {p50:.2f} | {p90:.2f} |")


if __name__ == "__main__":
    main()
