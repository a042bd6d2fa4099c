"""Nothing is executed that the user did not ask to trust: hfnlp loads its own model folders with its registered
classes (a tampered modeling file in the folder stays unread unless ``trust_remote_code=True``), and a pickled
weights file with code in it is refused, never run."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hfnlp.errors import HfnlpError
from hfnlp.models.backbones import load_weights_file
from hfnlp.models.fasttext import FastTextConfig, FastTextForSequenceClassification
from hfnlp.pipelines.text_classification import classify, load_text_classifier
from hfnlp.tokenization.text import TextTokenizerConfig, save_tokenizer, train_tokenizer

REPO = Path(__file__).resolve().parents[2]


class WritesAFile:
    """A pickle payload: unpickling it would create ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (self.path, "code ran"))


def tampered_model_folder(folder: Path, marker: Path) -> Path:
    config = TextTokenizerConfig(level="word", max_length=16)
    tokenizer = train_tokenizer(config, ["good food", "bad food", "good service"])
    model = FastTextForSequenceClassification(
        FastTextConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, num_labels=2)
    )
    model.save_pretrained(folder)
    save_tokenizer(tokenizer, config, folder)
    modeling = folder / "modeling_fasttext.py"
    assert modeling.exists() and "auto_map" in (folder / "config.json").read_text()
    payload = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('code ran')\n"
    future = "from __future__ import annotations\n"
    modeling.write_text(modeling.read_text().replace(future, future + payload, 1))
    return folder


WITHOUT_HFNLP = """
import sys
from tests.hub.without_hfnlp import BlockHfnlp
sys.meta_path.insert(0, BlockHfnlp())
from transformers import AutoModelForSequenceClassification
try:
    AutoModelForSequenceClassification.from_pretrained(sys.argv[1])
except ValueError as error:
    print("refused:", "trust_remote_code=True" in str(error))
AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True)
"""


@pytest.mark.slow
def test_a_modeling_file_in_a_model_folder_runs_only_with_trust_remote_code(tmp_path):
    marker = tmp_path / "marker.txt"
    folder = tampered_model_folder(tmp_path / "model", marker)
    # hfnlp loads its folders with its own registered classes, even when told to trust remote code.
    assert len(classify(load_text_classifier(folder), ["good food"])) == 1
    load_text_classifier(folder, trust_remote_code=True)
    assert not marker.exists()

    # Where hfnlp is not installed, transformers refuses the folder's code unless the user trusts it.
    environment = {**os.environ, "PYTHONPATH": str(REPO), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_HFNLP, str(folder)], capture_output=True, text=True, env=environment, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused: True" in result.stdout
    assert marker.read_text() == "code ran"  # the user asked for it: now, and only now, the folder's code ran


def test_a_pickled_weights_file_with_code_in_it_is_refused(tmp_path):
    marker = tmp_path / "marker.txt"
    weights = tmp_path / "backbone.pth"
    weights.write_bytes(pickle.dumps({"conv.weight": WritesAFile(marker)}))
    with pytest.raises(HfnlpError, match="backbone.pth: not a plain tensor checkpoint"):
        load_weights_file(torch.nn.Linear(2, 2), weights)
    assert not marker.exists()
