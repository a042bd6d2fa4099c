"""Command tests: one tiny text-classifier model folder per session (saved directly, no training), copies of it
broken in the ways users break them, and the CLI's error contract for a user's mistake."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import make_sentiment_rows

LABELS = ["negative", "positive"]


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete hfnlp fastText model folder (labels negative, positive) with its word tokenizer."""
    import torch

    from hfnlp.models.fasttext import FastTextConfig, FastTextForSequenceClassification
    from hfnlp.tokenization.text import TextTokenizerConfig, save_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("saved") / "model"
    config = TextTokenizerConfig(level="word", max_length=16)
    tokenizer = train_tokenizer(config, [text for text, _ in make_sentiment_rows(100)])
    torch.manual_seed(0)
    model = FastTextForSequenceClassification(
        FastTextConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={name: i for i, name in enumerate(LABELS)},
        )
    )
    model.save_pretrained(folder)
    save_tokenizer(tokenizer, config, folder)
    return folder


@pytest.fixture
def run_folder(model_folder: Path, tmp_path: Path) -> Path:
    """A run folder as ``hfnlp train`` leaves it, as far as loading looks: recipe, final model, checkpoint-3."""
    run = tmp_path / "run"
    shutil.copytree(model_folder, run / "model")
    shutil.copytree(model_folder, run / "checkpoint-3")
    (run / "recipe.yaml").write_text("task: text-classification\n", encoding="utf-8")
    return run


@pytest.fixture
def copy_of(model_folder: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``copy_of(name)``: a fresh copy of the model folder, to break."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(model_folder, tmp_path / name))

    return copy


def assert_one_line_error(capsys: pytest.CaptureFixture[str], *parts: str) -> str:
    """The command printed exactly one error line holding every one of ``parts``, and no traceback; returns it."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hfnlp: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]
