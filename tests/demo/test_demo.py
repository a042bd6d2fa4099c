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


@pytest.mark.slow  # a fresh process importing gradio and torch
def test_the_space_app_runs_without_hfnlp(trained_folder, tmp_path) -> None:
    space = tmp_path / "space"
    space.mkdir()  # an empty folder is fine
    assert main(["demo", str(trained_folder("text_rnn")), "--space", str(space)]) == 0
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("space_without_hfnlp.py")), str(space), GOOD, BAD],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "GRADIO_ANALYTICS_ENABLED": "False"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    output = json.loads(result.stdout.splitlines()[-1])
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


def test_the_image_page_answers_class_probabilities(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from hfnlp.models import FAMILIES
    from hfnlp.models.image_classifier import image_classifier_config
    from hfnlp.tasks.image_classification import image_processor_for

    section = {"type": "image_classifier", "architecture": "test_resnet", "pretrained": False, "image_size": 32}
    config = image_classifier_config(section, ["circle", "square", "triangle"])
    FAMILIES["image_classifier"].build_model(config).save_pretrained(tmp_path / "model")
    image_processor_for(config).save_pretrained(tmp_path / "model")
    probabilities = classify_function(load_demo(tmp_path / "model"))(Image.new("RGB", (40, 30), "red"))
    assert set(probabilities) == {"circle", "square", "triangle"}
    assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert np.isfinite(list(probabilities.values())).all()


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
