"""Guessing the text columns of an undescribed file (:func:`hfnlp.profile.guess_data_section`): every column of
mostly distinct, word-like values whose mean length is at least 15% of the longest one's, in file order; never ids,
codes, dates or short categories."""

from __future__ import annotations

import csv
import hashlib
import random
from pathlib import Path

import pytest
import yaml

from hfnlp.cli import main
from hfnlp.data.text import TextDataConfig, load_text_classification
from hfnlp.errors import DataError
from hfnlp.profile import guess_data_section
from hfnlp.tasks import load_recipe
from tests.conftest import SHARED_DATA, requires_shared_data

WORDS = ["market", "team", "oil", "price", "league", "chip", "court", "vote", "rocket", "bank", "storm", "deal"]
HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def write_table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def news_file(path: Path, count: int = 200, seed: int = 0) -> Path:
    """AG News' layout: ``label,title,description``, titles about 6 words, descriptions about 30."""
    rng = random.Random(seed)
    rows = [
        [str(1 + i % 4), sentence(rng, rng.randint(4, 9)), sentence(rng, rng.randint(20, 40)) + "."]
        for i in range(count)
    ]
    return write_table(path, ["label", "title", "description"], rows)


def test_news_with_a_title_and_a_description_gets_both_in_file_order(tmp_path):
    path = news_file(tmp_path / "news.csv")
    section, guessed = guess_data_section(str(path))
    assert section["text_column"] == ["title", "description"] and section["label_column"] == "label"
    why = guessed["data.text_column"]
    assert why.startswith("guessed: title, description: the columns of mostly distinct, word-like values")
    assert "at least 15% of the longest's" in why and "a row's text joins them, one per line" in why
    data = load_text_classification(TextDataConfig(**section), seed=0)  # the section loads: texts are joined
    assert all("\n" in text for text in data.splits["train"]["text"])


def test_chinese_reviews_get_the_review_column_only(tmp_path):
    rng = random.Random(1)
    rows = [[str(i % 2), "".join(rng.choice(HAN) for _ in range(rng.randint(8, 40)))] for i in range(200)]
    path = write_table(tmp_path / "reviews.csv", ["label", "review"], rows)
    section, guessed = guess_data_section(str(path))
    assert section["text_column"] == "review" and section["label_column"] == "label"
    assert guessed["data.text_column"].startswith("guessed: the longest mean length")


def test_ids_codes_dates_urls_and_categories_are_not_text(tmp_path):
    rng = random.Random(2)
    header = ["id", "sha", "url", "date", "city", "author", "title", "body", "category"]
    rows = []
    for i in range(200):
        body = sentence(rng, rng.randint(25, 45)) + "."
        rows.append(
            [
                f"A{i:06d}",  # an id
                hashlib.sha256(body.encode()).hexdigest(),  # 64 characters, longer than the titles
                f"https://news.example.com/{i}/{rng.choice(WORDS)}-{rng.choice(WORDS)}",
                f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}",
                rng.choice(["New York", "Hong Kong", "San Francisco", "Rio de Janeiro"]),  # two words, few values
                f"{rng.choice(['Ann', 'Bo', 'Cy', 'Di'])} {rng.choice(['Li', 'Smith', 'Ng'])}",  # 12 names
                sentence(rng, rng.randint(5, 9)),
                body,
                rng.choice(["world", "sports", "business"]),
            ]
        )
    path = write_table(tmp_path / "news.csv", header, rows)
    section, guessed = guess_data_section(str(path))
    assert section["text_column"] == ["title", "body"] and section["label_column"] == "category"

    # Without the body, the title stands alone even though the hash is longer: a hash is not word-like.
    short = write_table(tmp_path / "short.csv", header[:7] + header[8:], [row[:7] + row[8:] for row in rows])
    section, guessed = guess_data_section(str(short))
    assert section["text_column"] == "title"
    assert guessed["data.text_column"].startswith("guessed: the longest mean length, ")
    assert guessed["data.text_column"].endswith(
        ", among the columns of mostly distinct, word-like values (not ids, codes, dates or categories)"
    )

    # A word-like column far shorter than the longest (10-character kickers of 200-character bodies) is left out.
    kicker = write_table(
        tmp_path / "kicker.csv",
        ["kicker", "body", "category"],
        [[f"{row[6][:8]} {i}", row[7], row[8]] for i, row in enumerate(rows)],
    )
    section, guessed = guess_data_section(str(kicker))
    assert section["text_column"] == "body" and guessed["data.text_column"].endswith("; no other reaches 15% of it")


def test_a_file_without_word_like_columns_falls_back_to_the_longest_strings(tmp_path):
    rows = [[f"code{i}x{i * 7}", f"c{i % 3}", "ab"[i % 2]] for i in range(100)]
    path = write_table(tmp_path / "codes.csv", ["code", "group", "label"], rows)
    section, guessed = guess_data_section(str(path))
    assert section["text_column"] == "code" and section["label_column"] == "label"
    assert guessed["data.text_column"].endswith(" characters; no column holds mostly distinct, word-like values")


def test_given_text_columns_are_kept_as_a_list_or_a_name(tmp_path):
    path = news_file(tmp_path / "news.csv")
    section, guessed = guess_data_section(str(path), text_columns=["description", "title"])
    assert section["text_column"] == ["description", "title"] and section["label_column"] == "label"
    assert "data.text_column" not in guessed
    section, guessed = guess_data_section(str(path), text_columns=["title"])
    assert section["text_column"] == "title" and "data.text_column" not in guessed
    with pytest.raises(DataError, match=r"no column 'summary'; columns are label, title, description"):
        guess_data_section(str(path), text_columns=["title", "summary"])


def test_a_header_less_file_names_several_text_columns_text_1_text_2(tmp_path):
    rng = random.Random(3)
    path = tmp_path / "news.tsv"
    path.write_text(
        "".join(f"{sentence(rng, 6)}\t{sentence(rng, 25)}\t{i % 3}\n" for i in range(150)), encoding="utf-8"
    )
    section, _ = guess_data_section(str(path))
    assert section["column_names"] == ["text_1", "text_2", "label"]
    assert section["text_column"] == ["text_1", "text_2"] and section["label_column"] == "label"
    assert len(load_text_classification(TextDataConfig(**section), seed=0).splits["train"]) == 120


def test_the_recipe_command_writes_the_list_and_it_loads_back(tmp_path, capsys):
    path = news_file(tmp_path / "news.csv", count=300)
    out = tmp_path / "recipe.yaml"
    assert main(["recipe", "--data", str(path), "--out", str(out), "--output-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "text_column: ['title', 'description'] (guessed: title, description: " in err
    assert "  text_column: [title, description]  # guessed" in out.read_text(encoding="utf-8")
    assert load_recipe(out).data.text_column == ["title", "description"]

    args = ["recipe", "--data", str(path), "--text-column", "title", "--text-column", "description"]
    assert main(args) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["text_column"] == ["title", "description"]


@pytest.mark.integration
@requires_shared_data("ag_news", "ag_news_test.csv")
@requires_shared_data("waimai_10k", "waimai_10k.csv")
def test_ag_news_gets_title_and_description_and_waimai_its_review():
    section, _ = guess_data_section(str(SHARED_DATA / "ag_news" / "ag_news_test.csv"))
    assert section["text_column"] == ["title", "description"] and section["label_column"] == "label"
    section, _ = guess_data_section(str(SHARED_DATA / "waimai_10k" / "waimai_10k.csv"))
    assert section["text_column"] == "review" and section["label_column"] == "label"


def test_a_file_sorted_by_label_is_guessed_from_rows_across_it(tmp_path):
    from hfnlp.profile import guess_data_section
    from hfnlp.profile.columns import GUESS_SAMPLE_ROWS

    path = tmp_path / "sorted.csv"
    rows = [f"this was a bad one number {i},0" for i in range(GUESS_SAMPLE_ROWS)]
    rows += [f"this was a good one number {i},1" for i in range(GUESS_SAMPLE_ROWS)]
    path.write_text("review,label\n" + "\n".join(rows) + "\n")
    section, _ = guess_data_section(str(path))
    assert section["text_column"] == "review" and section["label_column"] == "label"
