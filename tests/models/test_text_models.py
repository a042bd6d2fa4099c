"""TextRNN, TextCNN and FastText classifiers: save/load, padding invariance, remote code, learning."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

import hfnlp.models
from hfnlp.models.fasttext import FastTextConfig
from hfnlp.models.text_cnn import TextCNNConfig
from hfnlp.models.text_rnn import TextRNNConfig
from tests.conftest import one_torch_thread

VOCAB_SIZE = 40
PAD = 0
SMALL = {"vocab_size": VOCAB_SIZE, "embedding_dim": 8, "num_labels": 3, "dropout": 0.1}

# fastText with TF-IDF weights and exact n-grams learnt from LEARNT_FROM (Galke & Scherp's wide MLP).
WIDE_MLP = {"ngram_sizes": [2, 3], "pooling": "tfidf", "exact_ngrams": True, "bag_activation": "relu"}
LEARNT_FROM = [[5, 9, 3, 12, 7], [4, 8], [9, 3], [3, 3, 8, 21, 6, 11], [12, 7, 4]]
RNN_CASES = [
    ("text_rnn", {"cell": cell, "bidirectional": bidirectional, "pooling": pooling})
    for cell in ("lstm", "gru")
    for bidirectional in (False, True)
    for pooling in ("last", "first_last", "mean", "max", "attention")
] + [("text_rnn", {"cell": "rnn", "pooling": "last", "num_layers": 1})]
OTHER_CASES = [
    ("text_cnn", {"filter_sizes": [2, 3, 4]}),
    ("text_cnn", {"filter_sizes": [1, 5]}),
    ("fasttext", {"ngram_sizes": []}),
    ("fasttext", {"ngram_sizes": [2]}),
    ("fasttext", {"ngram_sizes": [2, 3], "hidden_size": 6}),
    ("fasttext", WIDE_MLP),
]
FAMILY_DEFAULTS = {
    "text_rnn": {"hidden_size": 6, "num_layers": 2, "attention_size": 5},
    "text_cnn": {"num_filters": 4},
    "fasttext": {"ngram_buckets": 101},
}
CASES = RNN_CASES + OTHER_CASES


@pytest.fixture(autouse=True)
def single_thread():
    with one_torch_thread():
        yield


def case_id(case: tuple[str, dict]) -> str:
    family, options = case
    return "-".join([family, *(f"{key}={value}" for key, value in options.items())])


def build(family: str, options: dict, seed: int = 0) -> nn.Module:
    """A small model of ``family``, in eval mode, with non-default weights (xavier, embeddings included)."""
    torch.manual_seed(seed)
    options = {**SMALL, **FAMILY_DEFAULTS[family], "initializer": "xavier", "initialize_embeddings": True, **options}
    model = hfnlp.models.FAMILIES[family].build_model(hfnlp.models.MODEL_TYPES[family](**options))
    if hasattr(model, "learn_from_training_data"):
        model.learn_from_training_data(LEARNT_FROM)
    return model.eval()


def right_pad(texts: list[list[int]], length: int | None = None, pad_id: int = PAD) -> torch.Tensor:
    length = length or max(map(len, texts))
    return torch.tensor([text + [pad_id] * (length - len(text)) for text in texts])


def move_weights_to_own_memory(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.data = parameter.data.clone()


def test_families_are_registered_under_their_names_and_model_types() -> None:
    expected = {"text_rnn": TextRNNConfig, "text_cnn": TextCNNConfig, "fasttext": FastTextConfig}
    for name, config_class in expected.items():
        assert hfnlp.models.MODEL_TYPES[name] is config_class
        assert type(AutoConfig.for_model(config_class.model_type)) is config_class
    assert [cls.model_type for cls in expected.values()] == [
        "hfnlp_text_rnn",
        "hfnlp_text_cnn",
        "hfnlp_fasttext",
    ]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_save_and_auto_reload_give_identical_logits(case: tuple[str, dict], tmp_path) -> None:
    model = build(*case)
    input_ids = right_pad([[5, 9, 3, 12, 7], [4, 8], [30]])
    with torch.no_grad():
        expected = model(input_ids).logits
    model.save_pretrained(tmp_path)

    loaded, info = AutoModelForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)

    assert type(loaded) is type(model)
    assert not any(info.values()), f"missing/unexpected/mismatched weights: {info}"
    assert loaded.config.to_dict() == {**model.config.to_dict(), "_name_or_path": str(tmp_path)}
    loaded_state = loaded.state_dict()
    assert loaded_state.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded_state[name], weight) for name, weight in model.state_dict().items())
    with torch.no_grad():
        # The weights as loaded live in the memory-mapped safetensors file, only 4-byte aligned, so CPU
        # kernels take other code paths and may differ in the last bit; in memory of their own they match.
        torch.testing.assert_close(loaded(input_ids).logits, expected, atol=1e-6, rtol=0)
        move_weights_to_own_memory(loaded)
        assert torch.equal(loaded(input_ids).logits, expected)


@pytest.mark.parametrize("family", ["text_rnn", "text_cnn", "fasttext"])
def test_reload_for_a_new_label_set_reinitializes_only_the_classifier(family: str, tmp_path) -> None:
    model = build(family, {})
    model.save_pretrained(tmp_path)
    labels = {0: "a", 1: "b", 2: "c", 3: "d", 4: "e"}

    loaded, info = AutoModelForSequenceClassification.from_pretrained(
        tmp_path,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        ignore_mismatched_sizes=True,
        output_loading_info=True,
    )

    assert {key for key, *_ in info["mismatched_keys"]} == {"classifier.weight", "classifier.bias"}
    # Initialized as the config says (xavier, zero bias), not left as uninitialized memory from the meta device.
    weight = loaded.classifier.weight
    assert weight.shape[0] == 5
    assert 0 < weight.abs().max().item() <= math.sqrt(6 / (weight.shape[0] + weight.shape[1]))
    assert torch.count_nonzero(loaded.classifier.bias) == 0
    # Everything that was loaded stays as saved.
    loaded_state = loaded.state_dict()
    for name, tensor in model.state_dict().items():
        assert name.startswith("classifier.") or torch.equal(loaded_state[name], tensor), name


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_logits_do_not_depend_on_padding(case: tuple[str, dict]) -> None:
    model = build(*case)
    texts = [[5], [9, 3], [12, 7, 4], [3, 3, 8, 21, 6, 11]]
    long_text = list(range(1, 36))
    with torch.no_grad():
        alone = torch.cat([model(torch.tensor([text])).logits for text in texts])
        batched = model(right_pad([*texts, long_text])).logits[:-1]
        # Padding that holds real token ids must be ignored too: only attention_mask says what is padding.
        masked_ids = right_pad([*texts, long_text], pad_id=17)
        masked = model(masked_ids, attention_mask=(right_pad([*texts, long_text]) != PAD).long()).logits[:-1]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(masked, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["text_rnn", "text_cnn", "fasttext"])
def test_forward_returns_cross_entropy_loss_and_ignores_extra_inputs(family: str) -> None:
    model = build(family, {})
    input_ids = right_pad([[5, 9, 3], [4, 8]])
    labels = torch.tensor([2, 0])
    output = model(input_ids, labels=labels, token_type_ids=torch.zeros_like(input_ids))
    torch.testing.assert_close(output.loss, nn.functional.cross_entropy(output.logits, labels))
    assert output.logits.shape == (2, 3)
    assert model(input_ids).loss is None
    # The Trainer must scale the loss for gradient accumulation itself (see accepts_loss_kwargs).
    assert model.accepts_loss_kwargs is False


@pytest.mark.parametrize("family", ["text_rnn", "text_cnn", "fasttext"])
def test_frozen_embeddings_stay_frozen_after_reload_and_replacement(family: str, tmp_path) -> None:
    model = build(family, {"freeze_embeddings": True}).train()
    assert model.get_input_embeddings().weight.requires_grad is False
    model(right_pad([[5, 9, 3], [4, 8]]), labels=torch.tensor([2, 0])).loss.backward()
    assert model.get_input_embeddings().weight.grad is None
    assert model.classifier.weight.grad is not None

    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert loaded.get_input_embeddings().weight.requires_grad is False
    assert all(p.requires_grad for name, p in loaded.named_parameters() if not name.startswith("embedding."))

    loaded.set_input_embeddings(nn.Embedding(VOCAB_SIZE, 8, padding_idx=PAD))
    assert loaded.get_input_embeddings().weight.requires_grad is False

    trainable = build(family, {})
    # nn.Embedding.from_pretrained freezes by default; the config says trainable, and wins.
    trainable.set_input_embeddings(nn.Embedding.from_pretrained(torch.randn(VOCAB_SIZE, 8)))
    assert trainable.get_input_embeddings().weight.requires_grad is True


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys


    class BlockHfnlp(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hfnlp" or name.startswith("hfnlp."):
                raise ImportError(f"hfnlp is not installed here ({name})")
            return None


    sys.meta_path.insert(0, BlockHfnlp())

    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        import hfnlp  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the import blocker does not work")

    input_ids = torch.load(sys.argv[1])
    for model_dir in sys.argv[2:]:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        # out of the memory-mapped file, whose alignment changes the last bits of CPU kernels' results
        for parameter in model.parameters():
            parameter.data = parameter.data.clone()
        with torch.no_grad():
            torch.save(model(input_ids).logits, f"{model_dir}/remote_logits.pt")
    """
)


def load_with_remote_code(tmp_path: Path, folders: list[Path]) -> None:
    """Run REMOTE_CODE_SCRIPT on ``folders`` (with ``tmp_path/input_ids.pt``) in a process without hfnlp."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_CODE_SCRIPT, str(tmp_path / "input_ids.pt"), *map(str, folders)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_trust_remote_code_loads_without_hfnlp(tmp_path) -> None:
    input_ids = right_pad([[5, 9, 3, 12, 7], [4, 8], [30]])
    torch.save(input_ids, tmp_path / "input_ids.pt")
    expected = {}
    for family, options in [("text_rnn", {"pooling": "attention"}), ("text_cnn", {}), ("fasttext", {})]:
        model = build(family, options)
        model.save_pretrained(tmp_path / family)
        with torch.no_grad():
            expected[family] = model(input_ids).logits
        assert not any(path.name.startswith("__init__") for path in (tmp_path / family).iterdir())
        # The shared files are links in the source tree; the folder gets their content.
        shared = [tmp_path / family / f"{kind}_text_classifier.py" for kind in ("configuration", "modeling")]
        assert all(path.is_file() and not path.is_symlink() for path in shared)

    load_with_remote_code(tmp_path, [tmp_path / family for family in expected])
    for family, logits in expected.items():
        assert torch.equal(torch.load(tmp_path / family / "remote_logits.pt"), logits), family


def presence_task(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Texts of 4-16 tokens from 1..29; label 1 when token 7 occurs (half the texts)."""
    lengths = torch.randint(4, 17, (count,), generator=generator)
    input_ids = torch.randint(8, 30, (count, 16), generator=generator)
    labels = torch.arange(count) % 2
    for row, length in enumerate(lengths.tolist()):
        if labels[row]:
            input_ids[row, torch.randint(0, length, (1,), generator=generator)] = 7
        input_ids[row, length:] = PAD
    return input_ids, (input_ids != PAD).long(), labels


@pytest.mark.parametrize(
    "case",
    [
        ("text_rnn", {"cell": "gru", "pooling": "max", "num_layers": 1}),
        ("text_rnn", {"cell": "lstm", "pooling": "last", "num_layers": 1}),
        ("text_rnn", {"cell": "lstm", "pooling": "attention", "num_layers": 1}),
        ("text_cnn", {"filter_sizes": [2, 3]}),
        ("fasttext", {"ngram_sizes": [2]}),
    ],
    ids=case_id,
)
def test_tiny_model_learns_a_generated_task(case: tuple[str, dict]) -> None:
    family, options = case
    torch.manual_seed(0)
    options = {**SMALL, "embedding_dim": 16, "num_labels": 2, **FAMILY_DEFAULTS[family], **options}
    model = hfnlp.models.FAMILIES[family].build_model(hfnlp.models.MODEL_TYPES[family](**options))
    generator = torch.Generator().manual_seed(0)
    train_ids, train_mask, train_labels = presence_task(512, generator)
    if hasattr(model, "learn_from_training_data"):
        model.learn_from_training_data(
            [ids[mask.bool()].tolist() for ids, mask in zip(train_ids, train_mask, strict=True)]
        )
    test_ids, test_mask, test_labels = presence_task(256, generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)

    start = time.perf_counter()
    model.train()
    for _ in range(15):
        for batch in torch.randperm(len(train_ids)).split(32):
            loss = model(train_ids[batch], attention_mask=train_mask[batch], labels=train_labels[batch]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = model(test_ids, attention_mask=test_mask).logits.argmax(-1)
    accuracy = (predictions == test_labels).float().mean().item()

    assert accuracy >= 0.9, f"held-out accuracy {accuracy:.3f}"
    assert time.perf_counter() - start < 10
