"""``hfnlp export RUN --onnx``: one graph with dynamic batch and length per text family, logits within 1e-4 of
PyTorch on the run's real test texts padded together; TextRNN's export-only masked recurrence equals packing."""

from __future__ import annotations

import contextlib
import csv
import io
import re

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from hfnlp.cli import main
from hfnlp.errors import HfnlpError
from hfnlp.models import FAMILIES
from hfnlp.models.fasttext import FastTextConfig, FastTextForSequenceClassification
from hfnlp.models.onnx_export import MAX_ABS_DIFF, OPSET, check_batch, export_onnx, load_text_classifier_model
from hfnlp.tokenization.text import load_saved_tokenizer
from tests.hub.conftest import TEXT_MODELS


@pytest.mark.parametrize("family", list(TEXT_MODELS))
def test_onnx_export_matches_pytorch_on_real_padded_texts(run_of, family, tmp_path):
    run = run_of(family)
    folder = tmp_path / "model"
    assert main(["export", str(run), "--onnx", "--output", str(folder)]) == 0
    graph = onnx.load(folder / "onnx" / "model.onnx")
    assert next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) == OPSET
    for tensor in graph.graph.input:
        assert [d.dim_param for d in tensor.type.tensor_type.shape.dim] == ["batch", "sequence"]

    with (run.parent / "reviews.csv").open(encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:64]
    tokenizer = load_saved_tokenizer(folder)
    model = load_text_classifier_model(folder)
    session = onnxruntime.InferenceSession(str(folder / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch_texts in (texts, texts[:1], texts[5:8]):  # 64 texts of many lengths (lots of padding), 1, 3
        batch = tokenizer(batch_texts, padding=True, truncation=True, return_tensors="pt")
        assert batch_texts is not texts or (batch["attention_mask"] == 0).any()
        with torch.no_grad():
            expected = model(**batch).logits.numpy()
        (logits,) = session.run(None, {name: batch[name].numpy() for name in ("input_ids", "attention_mask")})
        assert np.abs(logits - expected).max() <= MAX_ABS_DIFF

    # The card now documents the ONNX graph, and its onnxruntime snippet runs.
    card = (folder / "README.md").read_text(encoding="utf-8")
    snippet = next(code for code in re.findall(r"```python\n(.*?)```", card, re.S) if "onnxruntime" in code)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(compile(snippet, "README.md", "exec"), {})
    assert re.fullmatch(r"\[[01 ]+\]\n", printed.getvalue())


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("pooling", ["last", "first_last", "mean", "max", "attention"])
def test_masked_recurrence_computes_what_packing_computes(cell, pooling):
    family = FAMILIES["text_rnn"]
    config = family.config_class(
        vocab_size=40, pad_token_id=0, num_labels=3, embedding_dim=8, hidden_size=6, cell=cell, pooling=pooling
    )
    torch.manual_seed(0)
    model = family.model_class(config).eval()
    input_ids, attention_mask = check_batch(config.vocab_size, config.pad_token_id)
    with torch.no_grad():
        packed = model(input_ids=input_ids, attention_mask=attention_mask).logits
        masked = family.exportable(model)(input_ids, attention_mask)
    assert torch.allclose(packed, masked, atol=1e-6)


def test_fasttext_with_learnt_ngrams_is_refused_by_name(tmp_path):
    config = FastTextConfig(vocab_size=20, num_labels=2, ngram_buckets=50, exact_ngrams=True, pooling="tfidf")
    FastTextForSequenceClassification(config).save_pretrained(tmp_path)
    with pytest.raises(HfnlpError, match="exact_ngrams or pooling: tfidf cannot be exported to ONNX"):
        export_onnx(tmp_path)
    assert not (tmp_path / "onnx").exists()


def test_families_without_an_export_are_refused(tmp_path):
    with pytest.raises(HfnlpError, match="ONNX export does not cover captioner models"):
        FAMILIES["captioner"].exportable(torch.nn.Linear(1, 1))
    FAMILIES["text_cnn"].model_class(FAMILIES["text_cnn"].config_class(vocab_size=20, num_filters=2)).save_pretrained(
        tmp_path / "cnn"
    )
    assert type(load_text_classifier_model(tmp_path / "cnn")).__name__ == "TextCNNForSequenceClassification"
