"""Data profile → recipe (hfnlp.profile) and ``hfnlp recipe``: on generated data of each kind the profile's rules
must tell apart (script, length, class count, balance), and the recipe must load back as written."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from hfnlp.cli import main
from hfnlp.data.text import TextDataConfig
from hfnlp.profile import guess_data_section, profile_text_data, recipe_from_profile
from hfnlp.tasks import load_recipe, recipe_from_dict
from hfnlp.tokenization.text import TextTokenizerConfig, train_tokenizer
from tests.conftest import make_sentiment_rows, write_csv

HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
TOPIC_WORDS = [f"topic{k}word{j}" for k in range(20) for j in range(6)]


def chinese_rows(count: int, seed: int = 0, length: tuple[int, int] = (8, 30)) -> list[tuple[str, str]]:
    """Short Chinese-like reviews: random Han characters, a label character pair decides the class."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.choice(["差评", "好评"])
        chars = [rng.choice(HAN) for _ in range(rng.randint(*length))]
        chars.insert(rng.randrange(len(chars) + 1), "好吃" if label == "好评" else "难吃")
        rows.append(("".join(chars), label))
    return rows


def topic_rows(count: int, classes: int, seed: int = 0, words: tuple[int, int] = (5, 20)) -> list[tuple[str, str]]:
    """English-like texts over ``classes`` topics, each with its own words among shared fillers."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        topic = i % classes
        text = [rng.choice(["the", "a", "of", "news", "today", "report"]) for _ in range(rng.randint(*words))]
        text += [f"topic{topic}word{rng.randrange(6)}" for _ in range(2)]
        rng.shuffle(text)
        rows.append((" ".join(text) + ".", f"class_{topic:02d}"))
    return rows


def draft_for(tmp_path: Path, rows: list[tuple[str, str]], **data):
    path = write_csv(tmp_path / "data.csv", rows)
    section = {"train_file": str(path), **data}
    profile = profile_text_data(TextDataConfig(**section), seed=0)
    return profile, recipe_from_profile(profile, section, seed=0)


def test_short_chinese_reviews_give_a_char_level_recipe(tmp_path):
    profile, draft = draft_for(tmp_path, chinese_rows(400))
    assert profile.level == "char" and profile.cjk_share > 0.99
    assert profile.rows == {"train": 400} and sorted(profile.class_counts) == ["好评", "差评"]
    assert 10 <= profile.token_lengths.p50 <= profile.token_lengths.p95 <= profile.token_lengths.max <= 32
    tokenizer, model = draft.recipe["tokenizer"], draft.recipe["model"]
    assert tokenizer["level"] == "char" and tokenizer["max_length"] == 32  # p95 ≤ 32, rounded up to 16s
    assert model["type"] == "fasttext" and model["pooling"] == "tfidf" and model["ngram_sizes"] == [2, 3]
    assert model["ngram_buckets"] >= profile.ngram_counts_in_two_texts[2] + profile.ngram_counts_in_two_texts[3]
    assert draft.recipe["data"]["validation_ratio"] == draft.recipe["data"]["test_ratio"] == 0.15  # 0.1 × ~200 < 25
    assert "p95 of train lengths in chars is" in draft.why["tokenizer.max_length"]
    assert not [w for w in draft.warnings if "truncates" in w]
    assert "subword_sizes" not in model  # a CJK character is its own subword


def test_english_reviews_give_a_word_level_recipe_with_bigrams_and_trigrams(tmp_path):
    profile, draft = draft_for(tmp_path, make_sentiment_rows(600))
    assert profile.level == "word" and profile.cjk_share == 0
    assert profile.vocabulary_size == len(
        {w for text, _ in make_sentiment_rows(600) for w in text.split()}
    )  # every generated word, nothing else
    assert draft.recipe["tokenizer"]["level"] == "word"
    assert draft.recipe["model"]["ngram_sizes"] == [2, 3]  # they fit the table cap
    # words and their character 3-5-grams in one bag; a table of about 4 rows per word, in steps of 10,000
    assert draft.recipe["model"]["subword_sizes"] == [3, 4, 5] and draft.recipe["model"]["subword_buckets"] == 10_000
    assert draft.recipe["tokenizer"]["vocab_size"] == profile.tokens_seen_at_least(2) + 2
    assert draft.recipe["training"]["per_device_train_batch_size"] == 16  # 480 rows: never 500 updates an epoch
    assert draft.recipe["training"]["metric_for_best_model"] == "accuracy"  # balanced


def test_lengths_and_vocabulary_are_those_of_the_recipe_tokenizer(tmp_path):
    rows = [("Ｆｕｌｌ-width ＡＢＣ, <b>bold</b> text!  It's 3.5 stars", "x"), ("Tabs\tand\nnew lines..?", "y")] * 10
    rows += [("中文，ＡＢＣ半角 <br />好！", "x"), ("另一 句话", "y")] * 10
    for level, picked in (("word", rows[:20]), ("char", rows[20:])):
        path = write_csv(tmp_path / f"{level}.csv", picked)
        profile = profile_text_data(TextDataConfig(train_file=str(path)))
        assert profile.level == level
        tokenizer = train_tokenizer(TextTokenizerConfig(level=level, vocab_size=10_000), [t for t, _ in picked])
        lengths = sorted(len(ids) for ids in tokenizer([t for t, _ in picked])["input_ids"])
        assert profile.train_token_lengths.tolist() == lengths
        assert profile.vocabulary_size == len(tokenizer) - 2


def test_ngram_counts_and_duplicates_and_leakage(tmp_path):
    rows = [("a b c", "x"), ("a b d", "y"), ("a b c", "x"), ("e f", "y"), ("A  B c", "y")] * 1
    train = write_csv(tmp_path / "train.csv", rows)
    valid = write_csv(tmp_path / "valid.csv", [("e f", "y"), ("new text", "x")])
    test = write_csv(tmp_path / "test.csv", [("other text", "x"), ("more", "y")])
    config = TextDataConfig(train_file=str(train), validation_file=str(valid), test_file=str(test))
    profile = profile_text_data(config)
    # bigrams (a b) ×4 texts, (b c) ×3, (b d), (e f): 4 distinct, 2 of them in 2+ texts; trigrams (a b c) ×3, (a b d)
    assert profile.ngram_counts == {2: 4, 3: 2}
    assert profile.ngram_counts_in_two_texts[2] == 2
    assert profile.duplicate_texts == 2  # "a b c" again, and "A  B c" (case and spaces aside)
    assert profile.conflicting_duplicates == 1  # "a b c" is x and y
    assert profile.shared_with_train == {"validation": 1, "test": 0}
    assert any("leakage" in warning for warning in profile.warnings())
    assert profile.given_splits == ["test", "train", "validation"]
    draft = recipe_from_profile(profile, {"train_file": str(train)})
    assert "validation_ratio" not in draft.recipe["data"]  # nothing to carve


def test_long_texts_are_capped_and_the_truncation_is_warned(tmp_path):
    rows = topic_rows(60, classes=2, words=(1100, 1500))
    profile, draft = draft_for(tmp_path, rows)
    assert profile.token_lengths.p95 > 1024
    assert draft.recipe["tokenizer"]["max_length"] == 1024
    assert "subword_sizes" not in draft.recipe["model"]  # long texts: the words carry the evidence
    assert "capped at 1024" in draft.why["tokenizer.max_length"]
    (warning,) = [w for w in draft.warnings if "truncates" in w]
    covering = -(-profile.token_lengths.p95 // 16) * 16
    assert f"truncates {profile.share_longer_than(1024):.1%}" in warning and f"{covering} would cover 95%" in warning


def test_twenty_imbalanced_classes_choose_macro_f1_and_larger_held_out_splits(tmp_path):
    rows = topic_rows(1000, classes=20)
    rows += [(text, "class_00") for text, _ in topic_rows(400, classes=1, seed=1)]  # class_00: 450 rows, others 50
    profile, draft = draft_for(tmp_path, rows)
    assert len(profile.label_names) == 20 and profile.imbalance_ratio == 9.0
    assert draft.recipe["training"]["metric_for_best_model"] == "macro_f1"
    assert "9.0:1" in draft.why["training.metric_for_best_model"]
    assert draft.recipe["data"]["validation_ratio"] == 0.2  # the rarest class has 50 rows: even 20% gives 10
    assert draft.recipe["data"]["label_names"] == [f"class_{k:02d}" for k in range(20)]


def test_the_yaml_loads_back_to_the_same_recipe(tmp_path):
    rows = [(text, label) for text, label in chinese_rows(300)]
    rows = [(text, {"好评": "yes", "差评": 'no "really"'}[label]) for text, label in rows]  # YAML-hostile names
    profile, draft = draft_for(tmp_path, rows)
    text = draft.to_yaml()
    assert yaml.safe_load(text) == draft.recipe
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_recipe(path).to_dict() == recipe_from_dict(draft.recipe).to_dict()
    for line in text.splitlines():
        if line.startswith("  max_length:"):
            assert line.endswith(f"# p95 of train lengths in chars is {profile.token_lengths.p95}")
    assert text.count("# WARNING") == len(draft.warnings)


def test_columns_are_guessed_from_lengths_names_and_distinct_values(tmp_path):
    rows = make_sentiment_rows(200)
    path = tmp_path / "reviews.csv"
    path.write_text(
        "id,title,review,sentiment\n"
        + "".join(f"{i},{text[:10]},{text},{label}\n" for i, (text, label) in enumerate(rows)),
        encoding="utf-8",
    )
    section, guessed = guess_data_section(str(path))
    assert section["text_column"] == "review" and section["label_column"] == "sentiment"
    assert "longest mean length" in guessed["data.text_column"] and section["format"] == "csv"

    headerless = tmp_path / "titles.txt"
    headerless.write_text("".join(f"{text}\t{i % 3}\n" for i, (text, _) in enumerate(rows)), encoding="utf-8")
    section, guessed = guess_data_section(str(headerless))
    assert section["column_names"] == ["text", "label"] and section["format"] == "tsv"
    assert section["text_column"] == "text" and section["label_column"] == "label"
    profile = profile_text_data(TextDataConfig(**section))
    assert profile.label_names == ["0", "1", "2"]

    ids_from_one = tmp_path / "news.csv"  # AG News numbers its 4 classes 1..4
    write_csv(ids_from_one, [(text, str(1 + i % 4)) for i, (text, _) in enumerate(rows)])
    section, guessed = guess_data_section(str(ids_from_one))
    assert section["label_names"] == ["1", "2", "3", "4"]
    assert guessed["data.label_names"] == "the label ids 1, 2, 3, 4 do not run 0..3"
    assert profile_text_data(TextDataConfig(**section)).class_counts == {"1": 50, "2": 50, "3": 50, "4": 50}


def test_label_folders_are_profiled_through_the_data_layer(tmp_path):
    for i, (text, label) in enumerate(make_sentiment_rows(120)):
        folder = tmp_path / "train" / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_text(text + " <br />", encoding="utf-8")
    section, _ = guess_data_section(str(tmp_path / "train"))
    assert section == {"train_file": str(tmp_path / "train"), "format": "label_folders"}
    profile = profile_text_data(TextDataConfig(**section))
    draft = recipe_from_profile(profile, section)
    assert profile.html_share == 1.0 and draft.recipe["tokenizer"]["strip_html"] is True
    assert draft.recipe["output_dir"] == f"runs/{tmp_path.name}-wide-mlp"  # "train" names a split, not the data


def test_recipe_command_prints_a_loadable_recipe(tmp_path, capsys):
    path = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(300), header=("label_text", "label"))
    out = tmp_path / "out" / "recipe.yaml"
    assert main(["recipe", "--data", str(path), "--out", str(out), "--output-dir", "runs/x"]) == 0
    err = capsys.readouterr().err
    assert "text_column: 'label_text' (guessed" in err and "rows: train 300" in err
    recipe = load_recipe(out)
    assert recipe.output_dir == "runs/x" and recipe.data.text_column == "label_text"
    assert main(["recipe", "--data", str(path), "--text-column", "label_text", "--label-column", "label"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["tokenizer"]["level"] == "word"


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "data file not found"),
        ("id,score\n" + "".join(f"{i},{i % 2}\n" for i in range(50)), [], "no text-like column"),
        ("text,label\n" + "".join(f"t{i},{i}\n" for i in range(50)), [], "no label-like column"),
        ("text,label\n" + "".join(f"t{i},pos\n" for i in range(50)), [], "column 'label' holds one label ('pos')"),
        ("a,b,label\nx,y,1\n", ["--text-column", "a", "--text-column", "c"], "no column 'c'"),
    ],
)
def test_recipe_command_fails_with_one_line(tmp_path, capsys, content, args, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["recipe", "--data", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()  # datasets may draw a progress bar before the error
    assert err.count("hfnlp: error:") == 1 and err.splitlines()[-1].startswith("hfnlp: error:"), err
    assert message in err.splitlines()[-1]


def test_profile_fields_are_plain_data_for_the_run_folder(tmp_path):
    profile, _ = draft_for(tmp_path, chinese_rows(100))
    summary = {k: v for k, v in vars(profile).items() if k not in ("token_frequencies", "train_token_lengths")}
    json.dumps(summary, default=vars)  # what a run folder would record
