"""Vectorised char-level tokenization gives the vocabulary and ids of the real ``tokenizers`` pipeline, on real data
and on any Unicode text."""

from __future__ import annotations

import csv
import functools
import itertools
import unicodedata

import pytest
from datasets import ClassLabel, Dataset, DatasetDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models
from transformers import DataCollatorWithPadding, PreTrainedTokenizerFast

from hfnlp.tasks.text_classification import encode_splits
from hfnlp.tokenization.text import (
    UNK_TOKEN,
    TextTokenizerConfig,
    _pre_tokenizer_for,
    _trainer_for,
    char_pipeline,
    cut_to_token_budget,
    load_saved_tokenizer,
    save_tokenizer,
    text_normalizer,
    token_budget,
    train_tokenizer,
    wrap_tokenizer,
)
from hfnlp.tokenization.unicode_composition import composition_seconds
from tests.conftest import SHARED_DATA, requires_shared_data


def trained_by_word_level_trainer(config: TextTokenizerConfig, texts: list[str]) -> PreTrainedTokenizerFast:
    """The char tokenizer as ``train_tokenizer`` made it before the vectorised path: ``WordLevelTrainer``."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = text_normalizer(config)
    tokenizer.pre_tokenizer = _pre_tokenizer_for(config)
    tokenizer.train_from_iterator(texts, _trainer_for(config))
    return wrap_tokenizer(tokenizer, config.max_length)


def reference_ids(tokenizer: PreTrainedTokenizerFast, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(cut_to_token_budget(texts, max_length), truncation=True, max_length=max_length)["input_ids"]


@functools.cache
def thucnews() -> DatasetDict:
    splits = {}
    for name, file in (("train", "train.txt"), ("validation", "dev.txt"), ("test", "test.txt")):
        rows = [line.split("\t") for line in (SHARED_DATA / "thucnews" / file).read_text("utf-8").splitlines()]
        splits[name] = Dataset.from_dict({"text": [text for text, _ in rows], "label": [int(lab) for _, lab in rows]})
    return DatasetDict(splits)


@functools.cache
def waimai() -> DatasetDict:
    with (SHARED_DATA / "waimai_10k" / "waimai_10k.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    dataset = Dataset.from_dict({"text": [row["review"] for row in rows], "label": [int(row["label"]) for row in rows]})
    return dataset.train_test_split(test_size=0.2, seed=0)  # splits with an indices mapping


@pytest.mark.integration
@pytest.mark.parametrize(
    ("corpus", "strip_html", "lowercase", "max_length"),
    [
        pytest.param(thucnews, True, True, 32, marks=requires_shared_data("thucnews")),
        pytest.param(thucnews, False, False, 5, marks=requires_shared_data("thucnews")),
        pytest.param(waimai, True, False, 32, marks=requires_shared_data("waimai_10k")),
        pytest.param(waimai, False, True, 5, marks=requires_shared_data("waimai_10k")),
    ],
)
def test_real_data_gets_the_trainers_vocabulary_and_the_saved_tokenizers_ids(
    tmp_path, corpus, strip_html, lowercase, max_length
):
    splits = corpus()
    config = TextTokenizerConfig(level="char", max_length=max_length, strip_html=strip_html, lowercase=lowercase)
    tokenizer = train_tokenizer(config, splits["train"]["text"])
    reference = trained_by_word_level_trainer(config, splits["train"]["text"][:])
    assert tokenizer.backend_tokenizer.to_str() == reference.backend_tokenizer.to_str()
    save_tokenizer(tokenizer, config, tmp_path)
    saved = load_saved_tokenizer(tmp_path, config)
    assert char_pipeline(saved) is not None

    encoded = encode_splits(splits, saved, max_length)
    for name, split in splits.items():
        expected = reference_ids(saved, split["text"][:], max_length)
        assert encoded[name]["input_ids"][:] == expected, name
        assert encoded[name]["length"][:] == [len(ids) for ids in expected]
        assert encoded[name]["label"][:] == split["label"][:]


# Characters and fragments where tokenization depends on neighbours or breaks the one-character-one-token rule:
# HTML tags, added tokens written out, combining marks, Hangul jamo (conjoining, compatibility, half-width),
# compositions whose second character is a starter (Oriya, Kannada, Sinhala, Myanmar, Bengali), full-width forms,
# every kind of white space, case mappings with context (final sigma) or expansions (İ), compatibility ligatures
# and squares, characters unknown to older Unicode versions, controls, private use and noncharacters.
FRAGMENTS = [
    *["<br />", "<b>x</b>", "<", ">", "a<b", "<<>>", "[PAD]", "[UNK]", "[pad]", "［PAD］", "[P", "AD]"],
    *["\u0301", "\u0308", "\u0345", "\u0334", "e\u0301", "\u0316\u0301", "\u0301\u0316", "a\u0308\u0301"],
    *["\u1100", "\u1161", "\u11a8", "가", "각", "\u3131", "\u314f", "\uffa1", "\uffc2", "\u1100\u1161\u11a8"],
    *["\u0b47", "\u0b3e", "\u0b57", "\u0cc6", "\u0cd5", "\u0cc2", "\u0dd9", "\u0dcf", "\u1025", "\u102e", "\u09c7"],
    *["\u09be", "\u0bc6", "\u0bbe", "\u0d46", "\u0d3e", "\u1b05", "\u1b35", "\U00011347", "\U0001133e"],
    *["\u0b47\u0b3e", "\u0cc6\u0cd5", "\u0dd9\u0dcf", "\u1025\u102e", "\u09c7\u09be", "\U00011347\U0001133e"],
    *["ＡＢ", "１２", "！", "，", "\u3000", "ｶﾞ", "ｶ\uff9e", "\u309b"],
    *[" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2000", "\u200a", "\u2028"],
    *["\u2029", "\u202f", "\u205f", "\u180e", "\u200b", "\ufeff"],
    *["Σ", "ΑΣ", "ΑΣ Α", "ς", "İ", "ǅ", "ẞ", "ß", "K", "Å"],
    *["ﬁ", "ﬀ", "㎏", "½", "…", "™", "①", "⑴", "\u00a8", "\u00b4", "\u02d8", "\u1fbd", "\u0385", "\u2474", "㍻"],
    *["外卖送餐", "很快", "😀", "👍🏽", "\U0001d400", "\U0001fbf0", "\u0378", "\U00016d67", "\U000113c2", "\U000e0001"],
    *["\x00", "\x7f", "\ue000", "\ufffe", "\uffff", "\U0010ffff"],
]
text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.characters(exclude_categories=("Cs",))), max_size=10).map(
    "".join
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    train_texts=st.lists(text, max_size=6),
    other_texts=st.lists(text, min_size=1, max_size=4),  # transformers cannot encode an empty batch
    strip_html=st.booleans(),
    lowercase=st.booleans(),
    vocab_size=st.integers(2, 40),
    min_frequency=st.integers(1, 3),
    max_length=st.integers(1, 12),
    max_chars=st.integers(1, 30),
)
def test_any_text_gets_the_trainers_vocabulary_and_the_tokenizers_ids(
    train_texts, other_texts, strip_html, lowercase, vocab_size, min_frequency, max_length, max_chars
):
    config = TextTokenizerConfig(
        level="char", strip_html=strip_html, lowercase=lowercase, vocab_size=vocab_size, min_frequency=min_frequency
    )
    tokenizer = train_tokenizer(config, train_texts)
    reference = trained_by_word_level_trainer(config, train_texts)
    assert tokenizer.get_vocab() == reference.get_vocab()
    assert tokenizer.backend_tokenizer.to_str() == reference.backend_tokenizer.to_str()

    texts = train_texts + other_texts
    encoding = char_pipeline(tokenizer).encode(tokenizer, texts, max_length=max_length, max_chars=max_chars)
    ids = [encoding.ids[start:stop].tolist() for start, stop in itertools.pairwise(encoding.offsets)]
    cut = [text[:max_chars] for text in texts]
    assert ids == reference(cut, truncation=True, max_length=max_length)["input_ids"]


TEXTS = ["外卖送餐很快，味道不错！", "送餐太慢了，难吃。", "Ｆｏｏｄ was <br />GREAT", "[PAD] 很 好", "", "   "]


def test_encode_splits_gives_what_datasets_map_gave_also_through_an_indices_mapping():
    labels = ClassLabel(names=["neg", "pos"])
    dataset = Dataset.from_dict(
        {"text": TEXTS * 5, "label": [i % 2 for i in range(30)], "row": list(range(30))},
    ).cast_column("label", labels)
    splits = DatasetDict(
        {"train": dataset.shuffle(seed=0), "test": dataset.train_test_split(test_size=0.3, seed=0)["test"]}
    )
    tokenizer = train_tokenizer(TextTokenizerConfig(level="char", max_length=6), dataset["text"])

    def encode(batch: dict[str, list]) -> dict[str, list]:  # the encode_splits of before the vectorised path
        encoded = tokenizer(cut_to_token_budget(batch["text"], 6), truncation=True, max_length=6)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    expected = splits.map(encode, batched=True, remove_columns=["text"])
    encoded = encode_splits(splits, tokenizer, 6)
    for name in splits:
        assert encoded[name].features == expected[name].features
        assert encoded[name].to_list() == expected[name].to_list()
        assert encoded[name]["row"][:] == splits[name]["row"][:]
    batch = DataCollatorWithPadding(tokenizer)([encoded["train"][i] for i in range(4)])
    assert batch["input_ids"].shape == (4, max(encoded["train"]["length"][:4]))


def test_char_pipeline_is_recognised_only_for_char_tokenizers(tmp_path):
    for strip_html, lowercase in itertools.product((True, False), repeat=2):
        config = TextTokenizerConfig(level="char", strip_html=strip_html, lowercase=lowercase)
        save_tokenizer(train_tokenizer(config, TEXTS), config, tmp_path / str(strip_html) / str(lowercase))
        loaded = load_saved_tokenizer(tmp_path / str(strip_html) / str(lowercase), config)
        assert char_pipeline(loaded).strip_html == strip_html
    for level in ("word", "jieba", "bpe", "wordpiece"):
        assert char_pipeline(train_tokenizer(TextTokenizerConfig(level=level), TEXTS)) is None


def test_the_token_budget_cut_applies_before_the_table():
    # A row of token_budget(1) spaces then text: the cut leaves only the spaces, so no tokens at all.
    tokenizer = train_tokenizer(TextTokenizerConfig(level="char"), ["很快"])
    texts = [" " * token_budget(1) + "很快", "很" * 3]
    encoding = char_pipeline(tokenizer).encode(tokenizer, texts, max_length=1, max_chars=token_budget(1))
    assert encoding.offsets.tolist() == [0, 0, 1]
    assert reference_ids(tokenizer, texts, 1) == [[], [encoding.ids[0]]]


def test_composition_seconds_are_those_of_a_full_scan_of_unicode():
    seconds = {chr(codepoint) for block in ((0x1161, 0x1176), (0x11A8, 0x11C3)) for codepoint in range(*block)}
    for codepoint in range(0x110000):
        decomposition = unicodedata.decomposition(chr(codepoint)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            first, second = (chr(int(code, 16)) for code in decomposition)
            if unicodedata.normalize("NFC", first + second) == chr(codepoint):
                seconds.add(second)
    assert composition_seconds() == seconds
    assert {"\u0b3e", "\u0cd5", "\u0dcf", "\u102e", "\u0301", "\u1161", "\u11a8"} <= seconds
