"""Tokenizers: every level trains, saves and reloads to the same ids, also without hfnlp for jieba."""

from __future__ import annotations

import subprocess
import sys

import pytest
from datasets import Dataset, DatasetDict

from hfnlp.tasks.text_classification import encode_splits
from hfnlp.tokenization.text import TextTokenizerConfig, load_saved_tokenizer, save_tokenizer, train_tokenizer

TEXTS = [
    "外卖送餐很快，味道不错！",
    "送餐太慢了，难吃。",
    "This movie was <br />GREAT, really great.",
    "I didn't like it: boring & slow...",
] * 5


@pytest.mark.parametrize("level", ["char", "word", "jieba", "bpe", "wordpiece"])
def test_every_level_round_trips_through_save_and_load(tmp_path, level):
    config = TextTokenizerConfig(level=level, max_length=12, vocab_size=200)
    tokenizer = train_tokenizer(config, TEXTS, num_texts=len(TEXTS))
    save_tokenizer(tokenizer, config, tmp_path)
    loaded = load_saved_tokenizer(tmp_path, config)
    for text in TEXTS[:4] + ["未见过的字 unseen words"]:
        assert loaded(text, truncation=True)["input_ids"] == tokenizer(text, truncation=True)["input_ids"]
        assert len(loaded(text, truncation=True)["input_ids"]) <= 12
    assert loaded.pad_token_id == 0 and loaded.unk_token == "[UNK]"


def test_levels_split_as_documented():
    def tokens(level: str, text: str, **kwargs) -> list[str]:
        tokenizer = train_tokenizer(TextTokenizerConfig(level=level, **kwargs), TEXTS)
        return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])

    assert tokens("char", "送餐 很快") == ["送", "餐", "很", "快"]
    assert tokens("word", "This movie was <br />GREAT.") == ["this", "movie", "was", "great", "."]
    assert tokens("word", "GREAT, really.", punctuation="drop") == ["great", "really"]
    assert tokens("jieba", "外卖送餐很快") == ["外卖", "送餐", "很快"]


@pytest.mark.parametrize("level", ["char", "word", "jieba", "bpe", "wordpiece"])
def test_encode_splits_gives_the_tokenizers_ids(level):
    tokenizer = train_tokenizer(TextTokenizerConfig(level=level, vocab_size=200), TEXTS)
    tokenizer(TEXTS, truncation=True, max_length=3)  # leaves truncation to 3 tokens set on the Rust tokenizer
    splits = DatasetDict({"train": Dataset.from_dict({"text": TEXTS, "label": [0] * len(TEXTS)})})
    encoded = encode_splits(splits, tokenizer, max_length=12)["train"]
    expected = tokenizer(TEXTS, truncation=True, max_length=12)
    assert encoded["input_ids"][:] == expected["input_ids"]
    assert encoded["attention_mask"][:] == expected["attention_mask"]
    assert encoded["length"][:] == [len(ids) for ids in expected["input_ids"]]
    assert encoded.column_names == ["label", "input_ids", "attention_mask", "length"]


def test_jieba_tokenizer_loads_without_hfnlp(tmp_path):
    config = TextTokenizerConfig(level="jieba")
    save_tokenizer(train_tokenizer(config, TEXTS), config, tmp_path)
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "hfnlp":
            raise ImportError("hfnlp is not installed here")
sys.meta_path.insert(0, Block())
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
print(tokenizer.convert_ids_to_tokens(tokenizer("外卖送餐很快")["input_ids"]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['外卖', '送餐', '很快']"


RUNAWAY_ROWS = """
import resource, sys
from datasets import Dataset, DatasetDict
from hfnlp.tasks.text_classification import encode_splits
from hfnlp.tokenization.text import TextTokenizerConfig, train_tokenizer

tokenizer = train_tokenizer(TextTokenizerConfig(level="char", max_length=32), ["好吃的外卖很快送到"] * 10)
texts = ["好吃的外卖很快送到" * 100_000 + str(i) for i in range(10)]  # 10 rows of 900,000 characters
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
splits = DatasetDict({"train": Dataset.from_dict({"text": texts, "label": [0] * 10})})
lengths = set(encode_splits(splits, tokenizer, max_length=32)["train"]["length"])
print(lengths, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.slow
def test_runaway_rows_are_truncated_with_bounded_memory():
    # Untreated, tokenizers encodes all 9 M characters before truncating: 1.4 GB more memory on this machine.
    result = subprocess.run([sys.executable, "-c", RUNAWAY_ROWS], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lengths, growth_mib = result.stdout.strip().rsplit(" ", 1)
    assert lengths == "{32}"
    assert int(growth_mib) < 700, f"tokenizing 10 long rows grew the process by {growth_mib} MiB"
