"""``hfnlp demo``: the text page's answers, the Space folder (complete, running without hfnlp), and the page in a
real browser."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hfnlp.cli import main
from hfnlp.demo import load_demo, write_space
from hfnlp.demo.app import highlights
from hfnlp.explain import explain
from hfnlp.pipelines.text_classification import load_text_classifier
from tests.commands.conftest import assert_one_line_error

GOOD, BAD = "the delivery was really fast and the food great", "my order was cold and late"


def classify_function(demo):
    (block,) = [block for block in demo.fns.values() if block.api_name == "classify"]
    return block.fn


def test_highlights_cover_the_whole_text_with_scores_scaled_into_one() -> None:
    text = "天气 很好！"
    spans = [{"start": 0, "end": 2, "score": -0.2}, {"start": 3, "end": 5, "score": 0.8}]
    assert highlights(text, spans) == [("天气", -0.25), (" ", None), ("很好", 1.0), ("！", None)]
    assert highlights("  ", []) == [("  ", None)]


def test_the_text_page_answers_label_probabilities_and_attributed_highlights(trained_folder) -> None:
    folder = trained_folder("text_cnn")
    labels, pieces = classify_function(load_demo(folder))(GOOD)
    assert set(labels) == {"negative", "positive"} and labels["positive"] > 0.9
    assert sum(labels.values()) == pytest.approx(1)
    assert "".join(piece for piece, _ in pieces) == GOOD
    spans = explain(load_text_classifier(folder), GOOD).spans
    top = max(spans, key=lambda span: span["score"])["text"]
    assert dict(pieces)[top] == 1.0 and all(score is None or -1 <= score <= 1 for _, score in pieces)
    assert classify_function(load_demo(folder))("  ") == ({}, [])


def test_a_space_folder_is_complete_and_a_non_empty_target_refused(trained_folder, tmp_path, capsys) -> None:
    import gradio

    space = write_space(trained_folder("fasttext_mean"), tmp_path / "space")
    assert sorted(path.name for path in space.iterdir()) == [
        "README.md", "app.py", "attribution.py", "demo_app.py", "model", "requirements.txt"
    ]  # fmt: skip
    front_matter = space.joinpath("README.md").read_text(encoding="utf-8").split("---")[1]
    for line in ("sdk: gradio", f"sdk_version: {gradio.__version__}", "app_file: app.py", "license: apache-2.0"):
        assert f"\n{line}\n" in front_matter
    assert "title: hfnlp text-classification: model" in front_matter
    requirements = space.joinpath("requirements.txt").read_text(encoding="utf-8").split()
    assert [line.split("==")[0] for line in requirements] == ["torch", "transformers", "numpy", "pillow"]
    for module in ("app.py", "demo_app.py", "attribution.py"):
        code = space.joinpath(module).read_text(encoding="utf-8")
        assert "import hfnlp" not in code and "from hfnlp" not in code, module
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (space / "model").iterdir()}
    assert main(["demo", str(trained_folder("fasttext_mean")), "--space", str(space)]) == 2
    assert_one_line_error(capsys, f"--space {space}: exists and is not an empty folder")


def run_space(space: Path, api: str, inputs: list[str], tmp_path: Path) -> dict:
    """What the Space's page function ``api`` answers for each input, from a fresh process without hfnlp."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("space_without_hfnlp.py")), str(space), api, *inputs],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "GRADIO_ANALYTICS_ENABLED": "False"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow  # a fresh process importing gradio and torch
def test_the_space_app_runs_without_hfnlp(trained_folder, tmp_path) -> None:
    space = tmp_path / "space"
    space.mkdir()  # an empty folder is fine
    assert main(["demo", str(trained_folder("text_rnn")), "--space", str(space)]) == 0
    output = run_space(space, "classify", [GOOD, BAD], tmp_path)
    assert output["hfnlp_modules"] == []
    expected = [classify_function(load_demo(trained_folder("text_rnn")))(text) for text in (GOOD, BAD)]
    for (labels, pieces), (want_labels, want_pieces) in zip(output["answers"], expected, strict=True):
        assert labels == pytest.approx(want_labels, abs=1e-5)
        assert [piece for piece, _ in pieces] == [piece for piece, _ in want_pieces]
        assert [score for _, score in pieces] == pytest.approx([score for _, score in want_pieces], abs=1e-3)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # a browser
def test_a_browser_classifies_a_typed_text(trained_folder) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("the browser test needs Chromium: apt-get install -y chromium")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright").sync_playwright
    from tests.ops.test_dashboard import CHROMIUM_ARGS

    demo = load_demo(trained_folder("fasttext_tfidf_nb"))
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#text textarea").fill(BAD)
            page.click("#submit")
            page.locator("#label").get_by_text("negative").first.wait_for(timeout=60_000)
            label = page.locator("#label").inner_text()
            assert label.lower().index("negative") < label.lower().index("positive")  # the top label comes first
            page.locator("#attributions").get_by_text("cold").first.wait_for(timeout=10_000)
            browser.close()
    finally:
        demo.close()


def test_the_image_page_answers_class_probabilities(image_classifier_folder) -> None:
    import numpy as np
    from PIL import Image

    probabilities = classify_function(load_demo(image_classifier_folder))(Image.new("RGB", (40, 30), "red"))
    assert set(probabilities) == {"circle", "square", "triangle"}
    assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert np.isfinite(list(probabilities.values())).all()


def caption_function(demo):
    (block,) = [block for block in demo.fns.values() if block.api_name == "caption"]
    return block.fn


def test_the_caption_page_answers_a_caption_and_one_overlay_per_word(captioner_folder) -> None:
    from PIL import Image

    from hfnlp.pipelines.loading import load_captioner

    photo = Image.new("RGB", (50, 40), "red")
    caption, overlays = caption_function(load_demo(captioner_folder))(photo)
    assert caption and caption == load_captioner(captioner_folder)(photo)[0]["generated_text"]
    assert [word for _, word in overlays] == caption.split()  # one tinted image per word, in order
    assert all(overlay.size == photo.size and overlay.mode == "RGB" for overlay, _ in overlays)
    assert caption_function(load_demo(captioner_folder))(None) == ("", [])


def test_an_image_space_requires_timm_which_runs_its_stock_folder(image_classifier_folder, tmp_path) -> None:
    space = write_space(image_classifier_folder, tmp_path / "space")
    requirements = space.joinpath("requirements.txt").read_text(encoding="utf-8").split()
    assert [line.split("==")[0] for line in requirements] == ["torch", "transformers", "numpy", "pillow", "timm"]
    assert not list((space / "model").glob("*.py"))  # a stock timm_wrapper folder: no code of its own


@pytest.mark.slow  # a fresh process importing gradio, torch and timm
@pytest.mark.parametrize(("folder", "api"), [("image_classifier_folder", "classify"), ("captioner_folder", "caption")])
def test_an_image_space_runs_without_hfnlp(folder, api, request, tmp_path) -> None:
    from PIL import Image

    model = request.getfixturevalue(folder)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (50, 40), "red").save(photo)
    assert main(["demo", str(model), "--space", str(tmp_path / "space")]) == 0
    output = run_space(tmp_path / "space", api, [str(photo)], tmp_path)
    assert output["hfnlp_modules"] == []
    (function,) = [block.fn for block in load_demo(model).fns.values() if block.api_name == api]
    expected = function(Image.open(photo))
    if api == "classify":
        assert output["answers"] == [pytest.approx(expected, abs=1e-5)]
    else:  # the caption, and a 50x40 overlay per word
        caption, overlays = expected
        assert output["answers"] == [[caption, [[[50, 40], word] for _, word in overlays]]]


def test_an_attention_overlay_tints_where_the_word_looked() -> None:
    import numpy as np
    from PIL import Image

    from hfnlp.demo.app import attention_overlay

    photo = Image.new("RGB", (40, 20), (0, 0, 200))
    attention = np.array([[0.0, 1.0]])  # 1 x 2 grid: the right half
    tinted = np.asarray(attention_overlay(photo, attention)).astype(int)
    assert tinted.shape == (20, 40, 3)
    assert tinted[10, 38, 0] > 100 and tinted[10, 38, 2] < 150  # red over the right edge
    assert tuple(tinted[10, 1]) == (0, 0, 200)  # the left edge untouched
