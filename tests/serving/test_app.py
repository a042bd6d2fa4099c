"""The app over real models, through FastAPI's TestClient: the token, /health, predictions equal to
``hfnlp predict``'s, batching of concurrent requests, and the 422 / 500 answers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hfnlp.cli import main
from hfnlp.serving.app import create_app
from hfnlp.serving.predictors import TextClassifierPredictor, load_predictor
from tests.serving.conftest import IMAGE_LABELS, TOKEN, bearer, png_base64

GOOD = "the food was great and fresh"
TEXTS = [GOOD, "awful cold order", "the delivery was slow and rude", "lovely", "my order today", "tasty food",
         "stale bread and late", "perfect"]  # fmt: skip


@pytest.fixture(scope="module")
def text_predictor(model_folder):
    return load_predictor(str(model_folder))


@pytest.fixture
def client(text_predictor):
    with TestClient(create_app(text_predictor, TOKEN, "model")) as client:
        yield client


def test_health_is_open_and_every_prediction_needs_the_token(client):
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "model": "model", "task": "text-classification", "backend": "torch", "batching": True, "ready": True
    }  # fmt: skip
    body = {"inputs": GOOD}
    for headers in (
        {},
        bearer("wrong"),
        bearer(TOKEN + "x"),
        {"Authorization": TOKEN},
        {"Authorization": "Bearer é".encode("latin-1")},
    ):
        response = client.post("/predict", json=body, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer" and "Bearer <token>" in response.json()["detail"]
    assert client.post("/predict", json=body, headers=bearer()).status_code == 200


def test_a_prediction_equals_hfnlp_predict(client, model_folder, capsys):
    for text in (GOOD, "awful cold order"):
        assert main(["predict", str(model_folder), text]) == 0
        expected = json.loads(capsys.readouterr().out.splitlines()[-1])
        response = client.post("/predict", json={"inputs": text}, headers=bearer())
        (prediction,) = response.json()["predictions"]
        assert [p["label"] for p in prediction] == [expected["label"]]
        assert round(prediction[0]["score"], 6) == expected["score"]


def test_top_k_ranks_the_labels_and_a_list_keeps_its_order(client):
    response = client.post("/predict", json={"inputs": TEXTS[:3], "top_k": 5}, headers=bearer())
    assert response.status_code == 200 and response.json()["model"] == "model"
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    for text, prediction in zip(TEXTS[:3], predictions, strict=True):
        assert {p["label"] for p in prediction} == {"negative", "positive"}  # top_k beyond the labels: all of them
        assert prediction[0]["score"] >= prediction[1]["score"] and sum(p["score"] for p in prediction) == (
            pytest.approx(1.0, abs=1e-6)
        )
        alone = client.post("/predict", json={"inputs": text}, headers=bearer()).json()["predictions"][0]
        assert alone[0]["label"] == prediction[0]["label"]


def concurrently(client: TestClient, texts: list[str]) -> list[dict]:
    with ThreadPoolExecutor(len(texts)) as pool:
        responses = list(pool.map(lambda t: client.post("/predict", json={"inputs": t}, headers=bearer()), texts))
    assert [r.status_code for r in responses] == [200] * len(texts)
    return [r.json()["predictions"][0][0] for r in responses]


def test_concurrent_requests_share_forward_passes(text_predictor):
    expected = [text_predictor.finish(p, 1)[0]["label"] for p in text_predictor.forward(TEXTS)]
    # A long wait: the batch fills up (8 inputs) long before it ends, so the test does not hang on it.
    app = create_app(text_predictor, TOKEN, "model", max_batch_size=len(TEXTS), max_wait_ms=5000)
    with TestClient(app) as client:
        answers = concurrently(client, TEXTS)
    batcher = app.state.batcher
    assert [a["label"] for a in answers] == expected  # each request got its own outputs back
    assert batcher.batches < len(TEXTS) and batcher.largest_batch > 1

    app = create_app(text_predictor, TOKEN, "model", max_wait_ms=5000, batching=False)
    with TestClient(app) as client:
        assert [a["label"] for a in concurrently(client, TEXTS)] == expected
    assert (app.state.batcher.batches, app.state.batcher.largest_batch) == (len(TEXTS), 1)


def test_a_batch_never_exceeds_the_largest_size(text_predictor):
    app = create_app(text_predictor, TOKEN, "model", max_batch_size=3, max_wait_ms=200)
    with TestClient(app) as client:
        concurrently(client, TEXTS)
    assert app.state.batcher.largest_batch <= 3 and app.state.batcher.batches >= 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "inputs is an empty list"),
        ({"inputs": ["a"] * 4}, "inputs holds 4 items, more than the 3"),
        ({"inputs": ["good", "  "]}, "inputs[1] is empty or blank"),
        ({"inputs": "good", "top_k": 0}, "greater than or equal to 1"),
        ({"inputs": 5}, "inputs"),
        ({"inputs": "good", "topk": 2}, "topk"),
        ({}, "inputs"),
    ],
)
def test_bad_requests_get_422_with_what_is_wrong(text_predictor, body, message):
    with TestClient(create_app(text_predictor, TOKEN, "model", max_inputs=3)) as client:
        response = client.post("/predict", json=body, headers=bearer())
    assert response.status_code == 422
    assert message in json.dumps(response.json()["detail"]), response.json()


def test_a_failing_model_gives_500_in_one_line_and_logs_the_traceback(text_predictor, caplog):
    def broken_logits(batch):
        raise RuntimeError("out of memory\nwhile computing")

    predictor = TextClassifierPredictor(text_predictor.tokenizer, broken_logits, text_predictor.labels, "torch")
    with TestClient(create_app(predictor, TOKEN, "model"), raise_server_exceptions=False) as client:
        response = client.post("/predict", json={"inputs": GOOD}, headers=bearer())
        assert client.get("/health").json()["ready"] is True  # the worker lives on
    assert response.status_code == 500
    assert response.json() == {"detail": "the model failed: RuntimeError: out of memory while computing"}
    assert "Traceback" in caplog.text and "broken_logits" in caplog.text


@pytest.fixture(scope="module")
def image_client(image_model_folder):
    with TestClient(create_app(load_predictor(str(image_model_folder)), TOKEN, "shapes")) as client:
        yield client


def test_image_classification_takes_base64_images(image_client):
    assert image_client.get("/health").json()["task"] == "image-classification"
    images = [png_base64((200, 30, 30)), "data:image/png;base64," + png_base64((0, 0, 250), size=64)]
    assert image_client.post("/predict", json={"inputs": images[0]}).status_code == 401
    response = image_client.post("/predict", json={"inputs": images, "top_k": 3}, headers=bearer())
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    for prediction in predictions:
        assert sorted(p["label"] for p in prediction) == IMAGE_LABELS
        scores = [p["score"] for p in prediction]
        assert scores == sorted(scores, reverse=True) and np.isclose(sum(scores), 1.0, atol=1e-5)
    single = image_client.post("/predict", json={"inputs": images[0]}, headers=bearer()).json()["predictions"]
    assert single[0] == predictions[0][:1]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("not base64!", "inputs[0] is not valid base64"),
        ("aGVsbG8gd29ybGQ=", "inputs[0]: not an image file PIL can read"),  # "hello world"
        ("", "inputs[0] is empty"),
    ],
)
def test_images_that_are_not_images_get_422(image_client, inputs, message):
    response = image_client.post("/predict", json={"inputs": [png_base64(), inputs][::-1]}, headers=bearer())
    assert response.status_code == 422 and message in response.json()["detail"], response.json()
