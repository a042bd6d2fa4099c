"""Model configs and initialisation: declarative checks, the initializer applied by the model itself (never to
loaded weights), the shared text-classifier files, and the captioner's generation settings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError

import hfnlp.models
from hfnlp.models import FAMILIES
from hfnlp.models.captioner import CaptionerConfig
from hfnlp.models.fasttext import FastTextConfig, FastTextForSequenceClassification
from hfnlp.models.text_cnn import TextCNNConfig, TextCNNForSequenceClassification
from hfnlp.models.text_rnn import TextRNNConfig, TextRNNForSequenceClassification
from tests.models.test_text_models import PAD, SMALL


@pytest.mark.parametrize(
    ("config_class", "options", "message"),
    [
        (TextRNNConfig, {"pooling": "avg"}, "Field 'pooling' expected one of ('last', 'first_last', 'mean'"),
        (
            TextRNNConfig,
            {"cell": "transformer"},
            "Field 'cell' expected one of ('rnn', 'gru', 'lstm'), got transformer",
        ),
        (
            TextRNNConfig,
            {"hidden_size": 0},
            "field 'hidden_size':\n    ValueError: Value must be a positive integer, got 0",
        ),
        (TextRNNConfig, {"num_layers": True}, "Field 'num_layers' expected int, got bool"),
        (TextCNNConfig, {"filter_sizes": []}, "filter_sizes must be a non-empty list of positive widths, got []"),
        (
            TextCNNConfig,
            {"filter_sizes": [3, 0]},
            "filter_sizes must be a non-empty list of positive widths, got [3, 0]",
        ),
        (TextCNNConfig, {"initializer": "he"}, "Field 'initializer' expected one of ('xavier', 'kaiming', 'normal'"),
        (FastTextConfig, {"ngram_sizes": [1, 2]}, "each of ngram_sizes must be 2 or more, got [1, 2]"),
        (
            FastTextConfig,
            {"hidden_size": -1},
            "field 'hidden_size':\n    ValueError: Value must be greater or equal to 0",
        ),
        (FastTextConfig, {"vocab_size": 10, "pad_token_id": 10}, "pad_token_id must be below vocab_size=10, got 10"),
        (TextCNNConfig, {"dropout": 1.0}, "field 'dropout':\n    ValueError: Value must be greater or equal to 0 and"),
        (CaptionerConfig, {"encoder_training": "some"}, "Field 'encoder_training' expected one of ('frozen'"),
        (CaptionerConfig, {"vocab_size": 5, "eos_token_id": 5}, "eos_token_id must be below vocab_size=5, got 5"),
    ],
)
def test_config_rejects_invalid_values_naming_field_and_value(config_class: type, options: dict, message: str) -> None:
    with pytest.raises(StrictDataclassError) as error:
        config_class(**options)
    assert message in str(error.value)


def test_config_keeps_labels_and_parameters() -> None:
    config = TextCNNConfig(id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}, filter_sizes=(3, 5))
    assert config.num_labels == 2
    assert config.filter_sizes == [3, 5]
    assert TextRNNConfig(num_labels=4).num_labels == 4
    assert TextRNNConfig(pooling="max") != TextRNNConfig(pooling="mean")
    # YAML reads `dropout: 0` as an int
    assert TextRNNConfig(dropout=0).dropout == 0 and CaptionerConfig(dropout=0).dropout == 0


def test_default_initializer_keeps_pytorch_defaults() -> None:
    model = TextCNNForSequenceClassification(
        TextCNNConfig(vocab_size=2000, embedding_dim=64, num_filters=32, initializer="default")
    )
    # nn.Embedding's own default is N(0, 1); transformers' generic _init_weights would give std 0.02.
    assert 0.9 < model.embedding.weight[1:].std().item() < 1.1
    assert torch.count_nonzero(model.embedding.weight[PAD]) == 0
    bound = 1 / math.sqrt(model.classifier.in_features)
    assert model.classifier.weight.abs().max().item() <= bound
    assert 0 < model.classifier.bias.abs().max().item() <= bound


@pytest.mark.parametrize(
    ("scheme", "expected_std"),
    [("xavier", math.sqrt(2 / (400 + 300))), ("kaiming", math.sqrt(2 / 300)), ("normal", 0.02)],
)
def test_the_model_applies_its_initializer(scheme: str, expected_std: float) -> None:
    options = {"vocab_size": 50, "embedding_dim": 300, "pad_token_id": 3, "hidden_size": 400, "ngram_sizes": []}
    torch.manual_seed(0)
    model = FastTextForSequenceClassification(FastTextConfig(**options, initializer=scheme))

    assert model.hidden.weight.std().item() == pytest.approx(expected_std, rel=0.05)
    assert torch.count_nonzero(model.hidden.bias) == 0
    assert model.embedding.weight[4:].std().item() == pytest.approx(1.0, rel=0.05)  # PyTorch's N(0, 1)

    torch.manual_seed(0)
    model = FastTextForSequenceClassification(FastTextConfig(**options, initializer=scheme, initialize_embeddings=True))
    assert model.embedding.weight[4:].std().item() == pytest.approx(
        {"xavier": math.sqrt(2 / 350), "kaiming": math.sqrt(2 / 300), "normal": 0.02}[scheme], rel=0.05
    )
    assert torch.count_nonzero(model.embedding.weight[3]) == 0


def test_the_initializer_covers_recurrent_weights_and_default_changes_them_not() -> None:
    torch.manual_seed(0)
    default = TextRNNForSequenceClassification(TextRNNConfig(**SMALL, cell="lstm", initializer="default"))
    assert torch.count_nonzero(default.rnn.bias_ih_l0) > 0  # PyTorch's uniform biases
    torch.manual_seed(0)
    xavier = TextRNNForSequenceClassification(TextRNNConfig(**SMALL, cell="lstm"))  # xavier by default
    assert torch.count_nonzero(xavier.rnn.bias_ih_l0) == 0
    hidden = xavier.rnn.weight_hh_l1_reverse
    assert hidden.abs().max().item() <= math.sqrt(6 / sum(hidden.shape))
    assert not torch.equal(hidden, default.rnn.weight_hh_l1_reverse)


@pytest.mark.parametrize("scheme", ["xavier", "kaiming", "normal", "default"])
def test_loading_never_reinitializes_saved_weights(scheme: str, tmp_path) -> None:
    config = TextRNNConfig(**SMALL, initializer=scheme, initialize_embeddings=True, pooling="attention")
    model = TextRNNForSequenceClassification(config)
    model.save_pretrained(tmp_path)
    torch.manual_seed(123)  # another random stream: any re-initialisation would show
    loaded = TextRNNForSequenceClassification.from_pretrained(tmp_path)
    loaded_state = loaded.state_dict()
    assert all(torch.equal(loaded_state[name], tensor) for name, tensor in model.state_dict().items())


def test_family_build_model_gives_the_model_the_config_describes() -> None:
    config = TextCNNConfig(**SMALL, num_filters=4, initializer="normal")
    model = FAMILIES["text_cnn"].build_model(config)
    assert type(model) is TextCNNForSequenceClassification and model.config is config
    assert model.classifier.weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_each_text_family_links_the_one_shared_file_of_each_kind() -> None:
    models = Path(hfnlp.models.__file__).parent
    for kind in ("configuration", "modeling"):
        real = models / "_shared" / f"{kind}_text_classifier.py"
        for family in ("text_rnn", "text_cnn", "fasttext"):
            link = models / family / f"{kind}_text_classifier.py"
            assert link.is_symlink() and link.resolve() == real.resolve(), link


def test_captioner_config_describes_generation() -> None:
    config = CaptionerConfig(
        vocab_size=20, encoder_name="test_efficientnet", encoder_pretrained=False, embedding_dim=8, hidden_size=8,
        attention_dim=8, beam_size=2, beam_length_penalty=0.5, max_caption_length=7,
    )  # fmt: skip
    generation = FAMILIES["captioner"].build_model(config).generation_config
    assert (generation.num_beams, generation.length_penalty, generation.max_length) == (2, 0.5, 7)
