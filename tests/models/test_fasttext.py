"""fastText's n-grams: the pinned hash, exact n-grams learnt from the training split, TF-IDF pooling."""

from __future__ import annotations

import math
import zlib

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from hfnlp.models.fasttext import FastTextConfig, FastTextForSequenceClassification
from hfnlp.models.fasttext.modeling_fasttext import hash_ngrams, subword_rows
from tests.models.test_text_models import LEARNT_FROM, PAD, SMALL, VOCAB_SIZE, WIDE_MLP, build, right_pad


def test_ngram_hash_is_pinned_order_sensitive_and_well_spread() -> None:
    # Pinned values: changing the hash would silently scramble the n-gram rows of every saved model.
    ids = torch.tensor([[5, 10, 11, 0]])
    assert hash_ngrams(ids, 2, 200_000).tolist() == [[118260, 194537, 17763]]
    assert (
        hash_ngrams(torch.tensor([[10, 5]]), 2, 200_000).item()
        != hash_ngrams(torch.tensor([[5, 10]]), 2, 200_000).item()
    )
    assert hash_ngrams(ids.int(), 3, 200_000).tolist() == [[194279, 3453]]

    vocab = torch.arange(300)
    bigrams = torch.stack([vocab.repeat_interleave(300), vocab.repeat(300)], dim=1)
    buckets = hash_ngrams(bigrams, 2, 65_536).squeeze(1)
    assert buckets.min() >= 0 and buckets.max() < 65_536
    expected_distinct = 65_536 * (1 - math.exp(-len(bigrams) / 65_536))  # a uniformly random hash
    assert torch.unique(buckets).numel() > 0.98 * expected_distinct


def test_plain_fasttext_has_no_ngram_table() -> None:
    model = FastTextForSequenceClassification(FastTextConfig(**SMALL, ngram_sizes=[]))
    assert not any(name.startswith("ngram_embedding") for name in model.state_dict())
    with_ngrams = FastTextForSequenceClassification(FastTextConfig(**SMALL, ngram_buckets=101))
    assert with_ngrams.ngram_embedding.weight.shape == (101, 8)


def test_exact_ngrams_give_each_training_ngram_a_row_and_leave_unseen_ones_out() -> None:
    model = build("fasttext", {**WIDE_MLP, "ngram_buckets": 101})
    learnt = {tuple(text[i : i + n]) for text in LEARNT_FROM for n in (2, 3) for i in range(len(text) - n + 1)}
    keys = model.ngram_keys[model.ngram_keys < 2**31]
    assert len(keys) == len(learnt) == len(set(keys.tolist()))  # a row each, no collision
    assert torch.equal(keys, keys.sort().values)

    rows, known = model._ngram_rows(torch.tensor([[5, 9, 3, 12, 7]]), 2)
    assert known.all() and len(set(rows[0].tolist())) == 4
    _, known = model._ngram_rows(torch.tensor([[9, 5, 5, 12]]), 2)  # tokens seen, bigrams never
    assert not known.any()

    # Capacity smaller than the n-grams found: the ones in most texts are kept.
    small = build("fasttext", {**WIDE_MLP, "ngram_sizes": [2], "ngram_buckets": 2})
    _, known = small._ngram_rows(torch.tensor([[9, 3, 12, 7]]), 2)
    assert known.tolist() == [[True, False, True]]  # (9, 3) and (12, 7) occur in two texts each


def test_tfidf_pooling_weighs_as_scikit_learn() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = build("fasttext", {"ngram_sizes": [2], "pooling": "tfidf", "exact_ngrams": True, "ngram_buckets": 101})
    texts = [[5, 9, 3, 9, 3], [4, 8], [9, 3, 21]]
    model.learn_from_training_data(texts)
    # The same bags in scikit-learn: tokens and bigrams as words, sublinear tf, smoothed idf, unit L2 norm.
    words = [[str(t) for t in text] + [f"{a}_{b}" for a, b in zip(text, text[1:], strict=False)] for text in texts]
    vectorizer = TfidfVectorizer(analyzer=lambda x: x, sublinear_tf=True)
    expected = vectorizer.fit_transform(words).toarray()

    rows, features, counts = model._bag_of_features(right_pad(texts), right_pad(texts) != PAD)
    weights = (1 + counts.double().log()) * model.idf[features].double()
    norms = torch.zeros(3, dtype=torch.float64).index_add_(0, rows, weights**2).sqrt()
    actual = sorted(zip(rows.tolist(), (weights / norms[rows]).tolist(), strict=True))
    wanted = sorted((row, value) for row, vector in enumerate(expected) for value in vector if value)
    assert [row for row, _ in actual] == [row for row, _ in wanted]
    torch.testing.assert_close(torch.tensor([v for _, v in actual]), torch.tensor([float(v) for _, v in wanted]))
    unseen = model._bag_of_features(torch.tensor([[30, 31]]), torch.tensor([[True, True]]))[1]
    assert model.idf[unseen].tolist() == [0.0, 0.0]  # tokens never seen in training weigh nothing


def test_tfidf_nb_weighs_features_by_naive_bayes_log_count_ratio() -> None:
    tfidf, nb = (
        FastTextForSequenceClassification(FastTextConfig(**{**SMALL, "num_labels": 2}, ngram_sizes=[], pooling=pooling))
        for pooling in ("tfidf", "tfidf_nb")
    )
    # Token 5 only in class 1, token 9 in both classes alike, token 3 in class 0 twice as often.
    texts, labels = [[5, 9, 3], [5, 9], [9, 3], [9, 3, 8]], [1, 1, 0, 0]
    tfidf.learn_from_training_data(texts)
    nb.learn_from_training_data(texts, labels=labels)
    # Wang & Manning's ratio: p = 1 + document counts in the class, q = 1 + in the others, each L1-normalised.
    inside = torch.ones(2, SMALL["vocab_size"], dtype=torch.float64)
    for text, label in zip(texts, labels, strict=True):
        inside[label, sorted(set(text))] += 1
    seen = sorted({token for text in texts for token in text})
    outside = inside.flip(0)
    ratio = ((inside / inside.sum(1, keepdim=True)) / (outside / outside.sum(1, keepdim=True))).log().abs().amax(0)
    torch.testing.assert_close(nb.idf[seen].double(), (tfidf.idf[seen].double() * ratio[seen]))
    assert nb.idf[5] > nb.idf[3] > nb.idf[9]  # the more a token tells the classes apart, the more it weighs
    assert nb.idf[30] == 0  # never seen: no weight
    with pytest.raises(ValueError, match="pass labels"):
        nb.learn_from_training_data(texts)


def test_subword_features_are_the_character_ngrams_of_each_word_with_boundary_marks() -> None:
    # Pinned: changing the hash would silently scramble the subword rows of every saved model.
    assert subword_rows("cat", [3], 1_000_003, 32) == [
        zlib.crc32(gram.encode()) % 1_000_003 for gram in ("<ca", "cat", "at>")
    ]
    assert len(subword_rows("internationalisation", [3, 4, 5], 1000, 32)) == 32  # 20+19+18 kept to 32, 3-grams first
    assert subword_rows("internationalisation", [3, 4, 5], 1000, 32)[:20] == subword_rows(
        "internationalisation", [3], 1000, 32
    )

    vocabulary = [None, None] + [f"w{i}" for i in range(2, VOCAB_SIZE)]
    vocabulary[5], vocabulary[9], vocabulary[3] = "play", "played", "zebra"
    config = FastTextConfig(**SMALL, ngram_sizes=[], pooling="tfidf", subword_sizes=[3], subword_buckets=997)
    model = FastTextForSequenceClassification(config).eval()
    model.learn_from_training_data([[5, 3], [9, 3], [3]], vocabulary=vocabulary)
    assert model.subword_table[0].eq(-1).all()  # a special token has no character n-grams
    assert set(model.subword_table[5][:4].tolist()) == set(subword_rows("play", [3], 997, 32))
    # "play" and "played" share "<pl", "pla", "lay": a text of "played" alone lights up rows "play" also uses.
    rows, features, counts = model._bag_of_features(torch.tensor([[9]]), torch.tensor([[True]]))
    shared = {row + model._subword_offset for row in subword_rows("play", [3], 997, 32)} & set(features.tolist())
    assert len(shared) >= 3
    # Unseen subword rows weigh nothing; a word never seen in training still gets the weight of its known n-grams.
    unseen_word = model.idf[model._subword_offset + subword_rows("qqq", [3], 997, 32)[1]]
    assert unseen_word == 0
    with pytest.raises(ValueError, match="pass vocabulary"):
        model.learn_from_training_data([[5, 3]])
    with pytest.raises(StrictDataclassClassValidationError, match="pooling"):
        FastTextConfig(**SMALL, subword_sizes=[3])  # mean pooling: the subwords would go unweighted


def test_a_model_with_subword_features_round_trips(tmp_path) -> None:
    vocabulary = [None, None] + [f"w{i}" for i in range(2, VOCAB_SIZE)]
    model = FastTextForSequenceClassification(
        FastTextConfig(**SMALL, **{**WIDE_MLP, "subword_sizes": [2, 3], "subword_buckets": 101})
    )
    model.learn_from_training_data(LEARNT_FROM, vocabulary=vocabulary)
    model.eval()
    model.save_pretrained(tmp_path)
    again = FastTextForSequenceClassification.from_pretrained(tmp_path).eval()
    input_ids = right_pad([[5, 9, 3, 12, 7], [4, 8]])
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids).logits, model(input_ids).logits)
    assert torch.equal(again.subword_table, model.subword_table)
