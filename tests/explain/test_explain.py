"""Attributions for every text model family: faithful (removing the top tokens hurts the prediction more than
removing random ones), pointing at the keywords that decide the generated labels, complete for integrated
gradients, and spans of the original text whatever the tokenizer did to it."""

from __future__ import annotations

import random

import pytest
import torch

from hfnlp.errors import HfnlpError
from hfnlp.explain import explain
from hfnlp.pipelines.text_classification import classify, load_text_classifier
from tests.conftest import NEGATIVE_WORDS, POSITIVE_WORDS, make_sentiment_rows, one_torch_thread

FAMILIES = ["fasttext_mean", "fasttext_tfidf_nb", "text_cnn", "text_rnn", "text_rnn_attention", "ensemble"]
KEYWORDS = set(POSITIVE_WORDS + NEGATIVE_WORDS)


def probability(classifier, text: str, label: str) -> float:
    batch = classifier.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        probabilities = torch.softmax(classifier.model(**batch).logits, dim=-1)[0]
    return float(probabilities[classifier.model.config.label2id[label]])


def without(text: str, spans: list[dict]) -> str:
    """``text`` with the characters of ``spans`` removed."""
    cut = {i for span in spans for i in range(span["start"], span["end"])}
    return "".join(char for i, char in enumerate(text) if i not in cut)


@pytest.mark.slow  # trains a model per family on first use
@pytest.mark.parametrize("family", FAMILIES)
def test_top_tokens_matter_more_than_random_ones_and_are_the_keywords(trained_folder, family) -> None:
    classifier = load_text_classifier(trained_folder(family))
    rng = random.Random(0)
    texts = [text for text, _ in make_sentiment_rows(60, seed=11) if len(text.split()) >= 6]
    top_drops, random_drops, keyword_on_top = [], [], 0
    with one_torch_thread():
        for text in texts:
            explanation = explain(classifier, text)
            assert explanation.method == ("integrated_gradients" if family.startswith("text_") else "occlusion")
            full = probability(classifier, text, explanation.label)
            ranked = sorted(explanation.spans, key=lambda span: span["score"], reverse=True)
            keyword_on_top += ranked[0]["text"] in KEYWORDS
            top_drops.append(full - probability(classifier, without(text, ranked[:2]), explanation.label))
            random_drops.append(
                sum(
                    full - probability(classifier, without(text, rng.sample(explanation.spans, 2)), explanation.label)
                    for _ in range(5)
                )
                / 5
            )
    top, chance = sum(top_drops) / len(texts), sum(random_drops) / len(texts)
    assert top > chance + 0.1, (top, chance)
    assert keyword_on_top / len(texts) >= 0.8


@pytest.mark.parametrize("family", ["text_cnn", "text_rnn", "text_rnn_attention"])
def test_integrated_gradients_add_up_to_the_change_from_the_zero_baseline(trained_folder, family) -> None:
    classifier = load_text_classifier(trained_folder(family))
    model, embedding = classifier.model, classifier.model.get_input_embeddings()
    with one_torch_thread():
        for text, _ in make_sentiment_rows(10, seed=5):
            explanation = explain(classifier, text)
            batch = classifier.tokenizer([text], return_tensors="pt")
            handle = embedding.register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
            with torch.no_grad():
                baseline = torch.softmax(model(**batch).logits, dim=-1)[0, model.config.label2id[explanation.label]]
            handle.remove()
            total = sum(span["score"] for span in explanation.spans)
            assert total == pytest.approx(explanation.score - float(baseline), abs=0.02)


def test_spans_are_offsets_into_the_original_text(trained_folder) -> None:
    classifier = load_text_classifier(trained_folder("fasttext_mean"))
    text = "  The FOOD was GREAT,\tand ＦＲＥＳＨ  "  # lower-cased and NFKC-normalised by the tokenizer
    explanation = explain(classifier, text)
    assert [span["text"] for span in explanation.spans] == ["The", "FOOD", "was", "GREAT", ",", "and", "ＦＲＥＳＨ"]
    assert all(text[span["start"] : span["end"]] == span["text"] for span in explanation.spans)
    assert explanation.label == "positive" and 0.5 < explanation.score <= 1


def test_chinese_characters_each_get_their_span(tmp_path) -> None:
    from hfnlp.models.text_cnn import TextCNNConfig, TextCNNForSequenceClassification
    from hfnlp.tokenization.text import TextTokenizerConfig, save_tokenizer, train_tokenizer

    config = TextTokenizerConfig(level="char", max_length=32)
    tokenizer = train_tokenizer(config, ["今天天气很好", "服务太差了"])
    torch.manual_seed(0)
    model = TextCNNForSequenceClassification(
        TextCNNConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            embedding_dim=8,
            filter_sizes=[2],
            num_filters=4,
            num_labels=2,
        )  # fmt: skip
    )
    model.save_pretrained(tmp_path / "model")
    save_tokenizer(tokenizer, config, tmp_path / "model")
    text = "天气 很好！"
    spans = explain(load_text_classifier(tmp_path / "model"), text).spans
    assert [(span["text"], span["start"], span["end"]) for span in spans] == [
        ("天", 0, 1), ("气", 1, 2), ("很", 3, 4), ("好", 4, 5), ("！", 5, 6)
    ]  # fmt: skip


def test_a_target_label_is_explained_and_an_unknown_one_refused(trained_folder) -> None:
    classifier = load_text_classifier(trained_folder("fasttext_mean"))
    text = "the food was great and fresh"
    for target in ("negative", 0):
        explanation = explain(classifier, text, target=target)
        assert explanation.label == "negative" and explanation.score < 0.5
        great = next(span for span in explanation.spans if span["text"] == "great")
        assert great["score"] < 0  # "great" argues against "negative"
    with pytest.raises(HfnlpError, match="unknown target label 'neutral'; the model's labels are negative, positive"):
        explain(classifier, text, target="neutral")
    with pytest.raises(HfnlpError, match="empty"):
        explain(classifier, "  ")


def test_the_pipeline_and_classify_add_attributions_on_request(trained_folder) -> None:
    classifier = load_text_classifier(trained_folder("text_cnn"))
    texts = ["the food was great", "cold and late order"]
    expected = [explain(classifier, text).spans for text in texts]
    assert [row["attributions"] for row in classifier(texts, explain=True)] == expected
    assert classifier(texts[0], explain=True)[0]["attributions"] == expected[0]
    for row, text, spans in zip(classifier(texts, explain=True, top_k=None), texts, expected, strict=True):
        top, other = sorted(row, key=lambda entry: entry["score"], reverse=True)
        assert top["attributions"] == spans  # each label explained for itself
        assert other["attributions"] == explain(classifier, text, target=other["label"]).spans != spans
    assert "attributions" not in classifier(texts)[0]
    results = classify(classifier, [texts[0], "", texts[1]], explain=True)
    assert [row["attributions"] for row in (results[0], results[2])] == expected and results[1] is None
    assert "attributions" not in classify(classifier, texts)[0]
