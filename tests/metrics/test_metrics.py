"""Tests for hfnlp.metrics: offline loading, classification values, COCO caption metrics vs pycocoevalcap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import hfnlp
from hfnlp.metrics import METRIC_NAMES, load_metric, metric_path
from hfnlp.metrics.coco import cider_d, coco_tokenize, corpus_bleu, rouge_l

if TYPE_CHECKING:
    import evaluate

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FLICKR8K_CAPTIONS = SHARED_DATA / "flickr8k" / "Flickr8k.token.txt"

# Six images with 2-5 raw references each; predictions cover an exact match, an empty caption,
# punctuation/case differences and unrelated text.
CAPTION_REFERENCES = [
    [
        "A man riding a wave on top of a surfboard.",
        "A surfer rides a large wave in the ocean.",
        "A man on a surfboard riding a wave.",
    ],
    ["Two dogs play in the snow.", "Two dogs are running through the snow!"],
    [
        "A child in a pink dress is climbing up a set of stairs.",
        "A little girl climbing into a wooden playhouse.",
        "A girl going into a wooden building.",
        "A little girl in a pink dress going into a wooden cabin.",
        "A little girl climbing the stairs to her playhouse.",
    ],
    ["A red car parked on the side of the street.", "The red car is parked near a tree.", "A red car."],
    ["People walking down a busy city street.", "A crowd of people walks on the sidewalk."],
    ["A black dog isn't jumping over a log (in the woods).", "A dog jumps over a fallen tree trunk."],
]
CAPTION_PREDICTIONS = [
    "A man riding a wave on top of a surfboard.",
    "two dogs running in the snow",
    "a girl in a pink dress climbing stairs",
    "",
    "a man is riding a bike down the street",
    "The black dog jumps over a log.",
]


@pytest.fixture(scope="module")
def pycoco() -> dict[str, object]:
    bleu = pytest.importorskip("pycocoevalcap.bleu.bleu")
    cider = pytest.importorskip("pycocoevalcap.cider.cider")
    rouge = pytest.importorskip("pycocoevalcap.rouge.rouge")
    return {"bleu": bleu.Bleu(4), "cider": cider.Cider(), "rouge_l": rouge.Rouge()}


_OFFLINE_SCRIPT = """
import json, socket

attempts = []

def blocked(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network is disabled in this test")

socket.socket.connect = blocked
socket.create_connection = blocked
socket.getaddrinfo = blocked

import evaluate
from hfnlp.metrics import METRIC_NAMES, load_metric

results, kinds = {}, {}
for name in METRIC_NAMES:
    metric = load_metric(name)
    kinds[name] = isinstance(metric, evaluate.Metric)
    if name == "classification":
        results[name] = metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    else:
        results[name] = metric.compute(
            predictions=["a dog runs on the grass", "a cat"],
            references=[["A dog runs on the grass.", "a dog"], ["a cat sleeps"]],
        )
print(json.dumps({"results": results, "kinds": kinds, "attempts": attempts}))
"""


@pytest.fixture(scope="module")
def offline_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen]:
    """A fresh process that loads and runs every metric offline, with HF_* offline and sockets blocked.

    It starts before this process imports evaluate, so that the two slow ``import evaluate`` (about 15 s
    of CPU each: evaluate pulls in transformers.pipelines and torch) run side by side.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    src_dir = str(Path(hfnlp.__file__).resolve().parents[1])
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_EVALUATE_OFFLINE="1",
        HF_HOME=str(tmp_path_factory.mktemp("hf_home")),  # empty caches: nothing from earlier downloads
        PYTHONPATH=os.pathsep.join(filter(None, [src_dir, env.get("PYTHONPATH")])),
    )
    process = subprocess.Popen(
        [sys.executable, "-c", _OFFLINE_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def metrics(offline_process: subprocess.Popen) -> dict[str, evaluate.EvaluationModule]:
    return {name: load_metric(name, keep_in_memory=True) for name in METRIC_NAMES}


def _pycoco_scores(pycoco: dict[str, object], predictions: list[str], references: list[list[str]]) -> dict:
    gts = dict(enumerate(references))
    res = {index: [prediction] for index, prediction in enumerate(predictions)}
    bleu, _ = pycoco["bleu"].compute_score(gts, res, verbose=0)
    return {
        **{f"bleu_{order}": score for order, score in enumerate(bleu, start=1)},
        "cider": pycoco["cider"].compute_score(gts, res)[0],
        "rouge_l": pycoco["rouge_l"].compute_score(gts, res)[0],
    }


def test_unknown_metric_name_lists_valid_names_and_suggests_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'cidr' \(did you mean 'cider'\?\).*rouge_l"):
        load_metric("cidr")
    assert metric_path("bleu").joinpath("bleu.py").is_file()


def test_metrics_are_evaluate_metric_subclasses(metrics: dict[str, evaluate.EvaluationModule]) -> None:
    import evaluate

    for name, metric in metrics.items():
        assert isinstance(metric, evaluate.Metric)
        assert metric.name == name
        assert set(metric.features) == {"predictions", "references"}


def test_classification_matches_hand_computed_values(metrics: dict[str, evaluate.EvaluationModule]) -> None:
    # class 0: P 1/3, R 1/2, F1 0.4; class 1: P 2/3, R 1, F1 0.8; class 2 ("bird"): never predicted, all 0.
    result = metrics["classification"].compute(
        predictions=[0, 1, 1, 1, 0, 0],
        references=[0, 0, 1, 1, 2, 2],
        labels=[0, 1, 2],
        label_names=["cat", "dog", "bird"],
        detailed=True,
    )
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["macro_f1"] == pytest.approx(0.4)
    assert result["macro_precision"] == pytest.approx(1 / 3)
    assert result["macro_recall"] == pytest.approx(0.5)
    assert result["weighted_f1"] == pytest.approx((0.4 * 2 + 0.8 * 2) / 6)
    assert result["report"] == {
        "cat": {"precision": pytest.approx(1 / 3), "recall": 0.5, "f1": pytest.approx(0.4), "support": 2},
        "dog": {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2},
        "bird": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2},
    }
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    assert list(result["report"]) == ["cat", "dog", "bird"]


def test_classification_label_handling(metrics: dict[str, evaluate.EvaluationModule]) -> None:
    metric = metrics["classification"]
    brief = metric.compute(predictions=[1, 0], references=[1, 1])
    assert set(brief) == {"accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1"}
    # label 2 occurs nowhere but is still a row and a column, and counts in the macro average
    result = metric.compute(predictions=[1, 0], references=[1, 1], label_names=["a", "b", "c"], detailed=True)
    assert result["confusion_matrix"] == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]
    assert result["macro_f1"] == pytest.approx((0 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError, match=r"label ids \[5\]"):
        metric.compute(predictions=[5, 0], references=[1, 1], labels=[0, 1])
    with pytest.raises(ValueError, match="2 label_names for 3 labels"):
        metric.compute(predictions=[1], references=[1], labels=[0, 1, 2], label_names=["a", "b"])
    with pytest.raises(ValueError, match="Mismatch in the number of predictions"):
        metric.compute(predictions=[1, 0], references=[1])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A man riding a wave on top of a surfboard.", "a man riding a wave on top of a surfboard"),
        (
            "Two dogs' toys aren't on the man's (red) bed; they're \"outside\"!",
            "two dogs toys are n't on the man 's -lrb- red -rrb- bed they 're outside",
        ),
        (
            "The U.S. flag is black-and-white, isn't it? I can't say... Mr. Smith won't -- maybe.",
            "the u.s. flag is black-and-white is n't it i ca n't say mr. smith wo n't maybe",
        ),
        (
            "A 3.5 inch cat eats 1,000 fish at 5:30 p.m. for $5 & 50% off.",
            "a 3.5 inch cat eats 1,000 fish at 5:30 p.m. for $ 5 & 50 % off",
        ),
        (
            'Wow!! Really?? A small child is playing with cut-outs of the letter " P. "',
            "wow !! really ?? a small child is playing with cut-outs of the letter p.",
        ),
        (
            "Don\u2019t stop \u2013 it\u2019s a slip 'n' slide\u2026 \u201cCannot\u201d gonna go [now] {ok}",
            "do n't stop it 's a slip 'n' slide can not gon na go -lsb- now -rsb- -lcb- ok -rcb-",
        ),
        (" . , ! ", ""),
    ],
)
def test_coco_tokenize_matches_ptb_tokenizer_output(raw: str, expected: str) -> None:
    # expected = Stanford PTBTokenizer 3.4.1 (-preserveLines -lowerCase) minus COCO's PUNCTUATIONS
    assert coco_tokenize(raw) == expected


def test_caption_metrics_agree_with_pycocoevalcap(
    metrics: dict[str, evaluate.EvaluationModule], pycoco: dict[str, object]
) -> None:
    predictions = [coco_tokenize(caption) for caption in CAPTION_PREDICTIONS]
    references = [[coco_tokenize(caption) for caption in refs] for refs in CAPTION_REFERENCES]
    expected = _pycoco_scores(pycoco, predictions, references)
    ours = {}
    for name in ("bleu", "cider", "rouge_l"):
        ours.update(metrics[name].compute(predictions=predictions, references=references, tokenize=False))
        raw = metrics[name].compute(predictions=CAPTION_PREDICTIONS, references=CAPTION_REFERENCES)
        assert raw == pytest.approx({k: v for k, v in ours.items() if k in raw}, abs=1e-12)
    assert set(ours) == set(expected)
    for key, value in expected.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert 0.1 < expected["bleu_4"] < 0.9 and 0.1 < expected["cider"] < 10


def test_per_image_scores_agree_with_pycocoevalcap(pycoco: dict[str, object]) -> None:
    predictions = [coco_tokenize(caption) for caption in CAPTION_PREDICTIONS]
    references = [[coco_tokenize(caption) for caption in refs] for refs in CAPTION_REFERENCES]
    gts = dict(enumerate(references))
    res = {index: [prediction] for index, prediction in enumerate(predictions)}
    assert cider_d(predictions, references)[1] == pytest.approx(
        list(pycoco["cider"].compute_score(gts, res)[1]), abs=1e-9
    )
    assert rouge_l(predictions, references)[1] == pytest.approx(
        list(pycoco["rouge_l"].compute_score(gts, res)[1]), abs=1e-12
    )


def test_bleu_smoothing_of_missing_ngrams_matches_pycocoevalcap(pycoco: dict[str, object]) -> None:
    # three words have no 4-gram: pycocoevalcap's (0 + 1e-15) / (0 + 1e-9) gives BLEU-4 = 1e-6 ** 0.25
    predictions, references = ["a red car"], [["a red car", "a car"]]
    expected = _pycoco_scores(pycoco, predictions, references)
    assert corpus_bleu(predictions, references)[3] == pytest.approx(expected["bleu_4"], abs=1e-9)
    assert expected["bleu_4"] == pytest.approx(1e-6**0.25, abs=1e-9)


def test_prediction_equal_to_a_reference(metrics: dict[str, evaluate.EvaluationModule]) -> None:
    predictions = ["A man riding a wave on a surfboard."]
    references = [["a man riding a wave on a surfboard", "A surfer in the sea."]]
    bleu = metrics["bleu"].compute(predictions=predictions, references=references)
    assert bleu == pytest.approx({f"bleu_{order}": 1.0 for order in range(1, 5)}, abs=1e-6)
    assert metrics["rouge_l"].compute(predictions=predictions, references=references)["rouge_l"] == 1.0
    # CIDEr's idf comes from the evaluated set: with one image every n-gram has idf 0 (as pycocoevalcap)
    assert metrics["cider"].compute(predictions=predictions, references=references)["cider"] == 0.0


def test_empty_prediction_scores_zero(metrics: dict[str, evaluate.EvaluationModule]) -> None:
    predictions = ["", "a red car parked on the street"]
    references = [["two dogs play in the snow"], ["a red car parked on the street", "a car"]]
    bleu = metrics["bleu"].compute(predictions=predictions, references=references)
    assert 0 < bleu["bleu_4"] < 1  # the empty caption adds reference length, hence a brevity penalty
    assert metrics["rouge_l"].compute(predictions=predictions, references=references)["rouge_l"] == 0.5
    assert cider_d(predictions, references)[1][0] == 0.0
    assert corpus_bleu([""], [["two dogs play"]]) == pytest.approx([0.0] * 4, abs=1e-12)


@pytest.mark.parametrize("name", ["bleu", "cider", "rouge_l"])
def test_caption_input_errors(metrics: dict[str, evaluate.EvaluationModule], name: str) -> None:
    metric = metrics[name]
    with pytest.raises(ValueError, match=r"Mismatch in the number of predictions \(2\) and references \(1\)"):
        metric.compute(predictions=["a dog", "a cat"], references=[["a dog"]])
    with pytest.raises(ValueError, match=r"references\[1\] must be a non-empty list"):
        metric.compute(predictions=["a dog", "a cat"], references=[["a dog"], []])
    with pytest.raises(ValueError, match="expected a list"):
        metric.compute(predictions=["a dog"], references=["a dog"])


@pytest.mark.parametrize("scorer", [corpus_bleu, cider_d, rouge_l])
def test_scorer_input_errors(scorer: Callable[..., object]) -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 reference lists"):
        scorer(["a dog", "a cat"], [["a dog"]])
    with pytest.raises(ValueError, match="no predictions"):
        scorer([], [])
    with pytest.raises(ValueError, match=r"references\[0\] must be a non-empty list"):
        scorer(["a dog"], ["a dog"])


@pytest.fixture(scope="module")
def flickr8k() -> tuple[list[str], dict[str, list[str]]]:
    if not FLICKR8K_CAPTIONS.is_file():
        pytest.skip("../shared/data/flickr8k is absent")
    captions: dict[str, list[str]] = defaultdict(list)
    with FLICKR8K_CAPTIONS.open(encoding="utf-8") as handle:
        for line in handle:
            key, caption = line.rstrip("\n").split("\t", 1)
            captions[key.split("#")[0]].append(caption)
    return sorted(captions), captions


@pytest.mark.integration
def test_coco_tokenize_equals_java_ptb_tokenizer_on_flickr8k(flickr8k) -> None:
    tokenizer = pytest.importorskip("pycocoevalcap.tokenizer.ptbtokenizer")
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    images, captions = flickr8k
    raw = [caption for image in images for caption in captions[image]]
    java = tokenizer.PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(raw)})
    ours = [coco_tokenize(caption) for caption in raw]
    mismatches = [(raw[i], java[i][0], ours[i]) for i in range(len(raw)) if java[i][0] != ours[i]]
    assert len(raw) == 35_000 and mismatches == []


@pytest.mark.integration
def test_caption_metrics_agree_with_pycocoevalcap_on_flickr8k(flickr8k, pycoco: dict[str, object]) -> None:
    images, captions = flickr8k
    images = images[:500]
    references = [[coco_tokenize(c) for c in captions[image][1:]] for image in images]
    # a third of the images get their own first caption, a third another image's, a third their own
    # first caption cut short (so that the brevity penalty and the "closest" reference length matter)
    predictions = []
    for index, image in enumerate(images):
        source = images[(index * 7) % len(images)] if index % 3 == 1 else image
        words = coco_tokenize(captions[source][0]).split()
        predictions.append(" ".join(words[: len(words) // 2] if index % 3 == 2 else words))
    expected = _pycoco_scores(pycoco, predictions, references)
    bleu = corpus_bleu(predictions, references)
    ours = {f"bleu_{order}": score for order, score in enumerate(bleu, start=1)}
    ours["cider"] = cider_d(predictions, references)[0]
    ours["rouge_l"] = rouge_l(predictions, references)[0]
    assert ours == pytest.approx(expected, abs=1e-9)


# Last in the file: the process started with the first test that needs `metrics` has had time to finish.
def test_every_metric_loads_offline_in_a_fresh_process(offline_process: subprocess.Popen) -> None:
    stdout, stderr = offline_process.communicate(timeout=300)
    assert offline_process.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert report["kinds"] == dict.fromkeys(METRIC_NAMES, True)
    assert report["results"]["classification"]["accuracy"] == pytest.approx(2 / 3)
    assert set(report["results"]["bleu"]) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4"}
    # "a cat" vs "a cat sleeps": precision 1, recall 2/3, beta 1.2
    cat_rouge = 2.44 * (2 / 3) / (2 / 3 + 1.44)
    assert report["results"]["rouge_l"]["rouge_l"] == pytest.approx((1.0 + cat_rouge) / 2)
    assert report["results"]["cider"]["cider"] > 0
