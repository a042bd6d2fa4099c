"""Tiny text classifiers of every family, trained on generated reviews whose label the sentiment words decide, and
saved as model folders (weights + word tokenizer) that hfnlp's loaders read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_sentiment_rows, one_torch_thread

LABELS = ["negative", "positive"]
# family name -> (model family, config overrides); small enough to train in a second or two on one thread
SPECS: dict[str, tuple[str, dict]] = {
    "fasttext_mean": ("fasttext", {"pooling": "mean", "ngram_sizes": [2], "ngram_buckets": 1000}),
    "fasttext_tfidf_nb": (
        "fasttext",
        {
            "pooling": "tfidf_nb",
            "ngram_sizes": [2],
            "ngram_buckets": 1000,
            "subword_sizes": [3],
            "subword_buckets": 500,
        },
    ),
    "text_cnn": ("text_cnn", {"filter_sizes": [2, 3], "num_filters": 16}),
    "text_rnn": ("text_rnn", {"cell": "lstm", "bidirectional": True, "hidden_size": 16, "num_layers": 1}),
    "text_rnn_attention": ("text_rnn", {"cell": "gru", "pooling": "attention", "hidden_size": 16, "num_layers": 1}),
}


def train_family(family: str, overrides: dict, tokenizer, rows: list[tuple[str, str]], seed: int = 0):
    """A model of ``family`` trained with Adam on ``rows`` (a few epochs, batches of 32), in eval mode."""
    import torch

    from hfnlp.models import FAMILIES

    torch.manual_seed(seed)
    config = FAMILIES[family].config_class(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        embedding_dim=16,
        dropout=0.0,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
        **overrides,
    )
    model = FAMILIES[family].model_class(config)
    texts = [text for text, _ in rows]
    labels = torch.tensor([LABELS.index(label) for _, label in rows])
    if hasattr(model, "learn_from_training_data"):
        vocabulary = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        model.learn_from_training_data(tokenizer(texts)["input_ids"], labels.tolist(), vocabulary=vocabulary)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(6):
        for start in range(0, len(texts), 32):
            batch = tokenizer(texts[start : start + 32], padding=True, return_tensors="pt")
            loss = model(**batch, labels=labels[start : start + 32]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="session")
def word_tokenizer():
    from hfnlp.tokenization.text import TextTokenizerConfig, train_tokenizer

    config = TextTokenizerConfig(level="word", max_length=64)
    return config, train_tokenizer(config, [text for text, _ in make_sentiment_rows(400)])


@pytest.fixture(scope="session")
def trained_folder(tmp_path_factory: pytest.TempPathFactory, word_tokenizer) -> Callable[[str], Path]:
    """``trained_folder(name)``: the saved model folder of ``SPECS[name]`` (or ``"ensemble"`` of fastText mean and
    TextCNN), trained once per session."""
    from hfnlp.tokenization.text import save_tokenizer

    config, tokenizer = word_tokenizer
    rows = make_sentiment_rows(400)
    folders: dict[str, Path] = {}
    models: dict[str, object] = {}

    def model_of(name: str):
        if name not in models:
            with one_torch_thread():
                models[name] = train_family(*SPECS[name], tokenizer, rows)
        return models[name]

    def folder(name: str) -> Path:
        if name not in folders:
            if name == "ensemble":
                from hfnlp.models.ensemble import EnsembleForSequenceClassification

                model = EnsembleForSequenceClassification.from_members(
                    [model_of("fasttext_mean"), model_of("text_cnn")], [0.5, 0.5]
                )
            else:
                model = model_of(name)
            path = tmp_path_factory.mktemp(name) / "model"
            model.save_pretrained(path)
            save_tokenizer(tokenizer, config, path)
            folders[name] = path
        return folders[name]

    return folder
