"""Data profile: statistics of a labelled text data set, as the data layer reads it.

:func:`profile_text_data` reads the splits through the data layer (:func:`hfnlp.data.text.load_text_classification`,
so exactly the rows a run would train on) and measures what the defaults depend on: rows, class balance, script,
lengths, vocabulary, n-grams, duplicates and leakage between splits.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import datasets
import numpy as np
import pandas

from hfnlp.data.text import TextDataConfig, load_text_classification

Level = Literal["char", "word"]

# Han ideographs (with extensions and compatibility forms) and kana: scripts written without spaces between words.
# Hangul is left out on purpose: Korean puts spaces between words, so word level suits it.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_LETTER = re.compile(r"[^\W\d_]")
HTML_TAG = re.compile(r"<[^>]+>")  # the pattern that tokenizer.strip_html removes
_SEPARATOR = "\x00"  # between texts joined into one string, to normalize and split them all at once
_HTML_TAG_IN_JOINED = re.compile(r"<[^>\x00]+>")  # a tag never spans two joined texts
_WORD_TOKEN = re.compile(r"\x00|[^\W_]+|\S")  # the separator, a run of letters and digits, or one other mark
_WHITE_SPACE = np.array([c for c in range(0x3001) if chr(c).isspace()], dtype=np.uint32)  # none lies higher

# The majority script decides the level: Chinese with a few Latin brand names is still Chinese.
CJK_LEVEL_SHARE = 0.5
LEVEL_REASONS = {
    "char": "characters (Li et al., ACL 2019: char-based beats word-segmented Chinese on text classification)",
    "word": "words split at white space and punctuation",
}
SCRIPT_SAMPLE_TEXTS = 2000  # texts read to tell the script: the share of CJK letters is stable long before that
# Above this many training tokens the n-grams are counted on a random sample of texts (the counts are then lower
# bounds; the profile says so): 10 M tokens keep the counting within a few seconds and a few hundred MB.
NGRAM_TOKEN_BUDGET = 10_000_000
SHORT_TEXT_TOKENS = 3  # fewer tokens than this: too short to classify reliably, worth a look


@dataclass(frozen=True)
class LengthStats:
    """Percentiles of text lengths (each the smallest length at least that share of the texts do not exceed)."""

    p50: int
    p90: int
    p95: int
    p99: int
    max: int

    @classmethod
    def of(cls, lengths: np.ndarray) -> LengthStats:
        """The percentiles of ``lengths`` (a non-empty array)."""
        # inverted_cdf picks an observed length: "p95 = 498" means 95% of the texts have 498 or fewer.
        p50, p90, p95, p99 = np.percentile(lengths, [50, 90, 95, 99], method="inverted_cdf")
        return cls(int(p50), int(p90), int(p95), int(p99), int(lengths.max()))


@dataclass
class TextProfile:
    """What :func:`recipe_from_profile` chooses from: statistics of the splits the data layer reads.

    Class, length, vocabulary and n-gram statistics are on the train split as given (before carving validation and
    test out of it); tokens are those of ``level``: characters (white space left out) for CJK text, words split at
    white space and punctuation (HTML tags stripped, lower-cased: the tokenizer's defaults) otherwise.
    """

    level: Level
    rows: dict[str, int]  # per split read; carved splits are not counted apart
    given_splits: list[str]
    label_names: list[str]
    class_counts: dict[str, int]  # train
    majority_share: float
    imbalance_ratio: float  # largest / smallest class in train (the data layer refuses a class without rows)
    cjk_share: float  # CJK characters among all letters of a sample of train
    html_share: float  # train texts with an HTML tag
    char_lengths: LengthStats
    token_lengths: LengthStats
    vocabulary_size: int  # distinct tokens in train
    token_frequencies: np.ndarray = field(repr=False)  # count of each distinct train token, descending
    ngram_counts: dict[int, int] = field(default_factory=dict)  # n → distinct n-grams of tokens in train texts
    ngram_counts_in_two_texts: dict[int, int] = field(default_factory=dict)  # n → those in at least 2 train texts
    ngram_sample_texts: int | None = None  # train texts the n-grams were counted on, if a sample
    duplicate_texts: int = 0  # train rows whose text (white space and case aside) an earlier train row has
    conflicting_duplicates: int = 0  # distinct train texts that occur with more than one label
    shared_with_train: dict[str, int] = field(default_factory=dict)  # validation/test rows whose text is in train
    short_texts: int = 0  # train texts of fewer than SHORT_TEXT_TOKENS tokens
    skipped_rows: dict[str, int] = field(default_factory=dict)
    train_token_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    seconds: float = 0.0

    @property
    def unit(self) -> str:
        """What a token is at this level, for messages: ``chars`` or ``words``."""
        return "chars" if self.level == "char" else "words"

    def share_longer_than(self, max_length: int) -> float:
        """The share of train texts with more than ``max_length`` tokens (what truncation to it cuts)."""
        lengths = self.train_token_lengths
        return float(len(lengths) - np.searchsorted(lengths, max_length, side="right")) / max(len(lengths), 1)

    def tokens_seen_at_least(self, times: int) -> int:
        """How many distinct train tokens occur at least ``times`` times."""
        return int(np.searchsorted(-self.token_frequencies, -times, side="right"))

    def warnings(self) -> list[str]:
        """Problems of the data itself that a user should look at before training."""
        found = []
        for split, shared in self.shared_with_train.items():
            if shared:
                found.append(
                    f"{shared:,} of {self.rows[split]:,} {split} rows ({shared / self.rows[split]:.1%}) have a text "
                    "that is also in train: leakage, their scores overstate what the model does on new text"
                )
        if self.conflicting_duplicates:
            found.append(f"{self.conflicting_duplicates:,} distinct train texts occur with different labels")
        if self.duplicate_texts:
            found.append(f"{self.duplicate_texts:,} train rows repeat an earlier train text")
        if self.short_texts:
            found.append(f"{self.short_texts:,} train texts have fewer than {SHORT_TEXT_TOKENS} {self.unit}")
        return found

    def describe(self) -> list[str]:
        """A few lines for a person: sizes, classes, script, lengths, vocabulary."""
        rows = ", ".join(f"{split} {count:,}" for split, count in self.rows.items())
        ngrams = ", ".join(
            f"{n}-grams {self.ngram_counts[n]:,} ({self.ngram_counts_in_two_texts[n]:,} in 2+ texts)"
            for n in self.ngram_counts
        )
        sample = f" on a sample of {self.ngram_sample_texts:,} texts" if self.ngram_sample_texts else ""
        return [
            f"rows: {rows}; skipped bad rows: {sum(self.skipped_rows.values())}",
            f"classes: {len(self.label_names)}, majority {self.majority_share:.1%}, "
            f"imbalance {self.imbalance_ratio:.1f}:1",
            f"script: {self.cjk_share:.0%} CJK letters → {self.level} level; HTML in {self.html_share:.1%} of texts",
            f"train lengths in {self.unit}: p50 {self.token_lengths.p50:,}, p90 {self.token_lengths.p90:,}, "
            f"p95 {self.token_lengths.p95:,}, p99 {self.token_lengths.p99:,}, max {self.token_lengths.max:,} "
            f"(p95 {self.char_lengths.p95:,} characters)",
            f"vocabulary: {self.vocabulary_size:,} {self.unit}, {self.tokens_seen_at_least(2):,} seen twice or more; "
            f"{ngrams}{sample}",
        ]

    def summary(self) -> str:
        """:meth:`describe` and the :meth:`warnings`, as text."""
        return "\n".join(self.describe() + [f"warning: {warning}" for warning in self.warnings()])


def profile_text_data(data_config: TextDataConfig, seed: int = 42) -> TextProfile:
    """Profile the splits ``data_config`` describes, read and validated by the data layer.

    Splits the section does not give are carved by the data layer and put back into train here: the statistics
    describe the data as the user has it, whatever ratios the recipe then chooses. ``seed`` draws the samples (the
    script sample, and the n-gram sample of very large sets).
    """
    start = time.perf_counter()
    data = load_text_classification(data_config, seed=seed)
    given = _given_splits(data_config, data.splits)
    carved = [data.splits[split] for split in data.splits if split not in given]
    splits = {split: data.splits[split] for split in ("train", "validation", "test") if split in given}
    if carved:
        splits["train"] = datasets.concatenate_datasets([data.splits["train"], *carved])
    # dataset[:] reads a whole column at once; iterating dataset["text"] goes through datasets' row formatter
    columns = {split: dataset[:] for split, dataset in splits.items()}
    texts = {split: column["text"] for split, column in columns.items()}
    train_texts, train_labels = texts["train"], columns["train"]["label"]
    rng = np.random.default_rng(seed)

    label_counts = np.bincount(train_labels, minlength=len(data.label_names))
    class_counts = {name: int(count) for name, count in zip(data.label_names, label_counts, strict=True)}
    cjk_share = cjk_share_of(train_texts, rng)
    level: Level = "char" if cjk_share >= CJK_LEVEL_SHARE else "word"

    tokens = tokenize(train_texts, level)
    token_lengths = tokens.lengths
    frequencies = np.sort(np.bincount(tokens.ids))[::-1]
    ngram_sizes = (2, 3)
    ngram_counts, in_two, sample = _ngram_counts(tokens, ngram_sizes, rng)

    keys = [_duplicate_key(text) for text in train_texts]
    labels_of: dict[str, set[int]] = {}
    for key, label in zip(keys, train_labels, strict=True):
        labels_of.setdefault(key, set()).add(label)
    shared = {
        split: sum(_duplicate_key(text) in labels_of for text in split_texts)
        for split, split_texts in texts.items()
        if split != "train"
    }
    return TextProfile(
        level=level,
        rows={split: len(dataset) for split, dataset in splits.items()},
        given_splits=sorted(given),
        label_names=list(data.label_names),
        class_counts=class_counts,
        majority_share=float(label_counts.max() / label_counts.sum()),
        imbalance_ratio=float(label_counts.max() / label_counts.min()),
        cjk_share=cjk_share,
        html_share=sum(bool(HTML_TAG.search(text)) for text in train_texts) / len(train_texts),
        char_lengths=LengthStats.of(np.array([len(text) for text in train_texts])),
        token_lengths=LengthStats.of(token_lengths),
        vocabulary_size=len(frequencies),
        token_frequencies=frequencies,
        ngram_counts=ngram_counts,
        ngram_counts_in_two_texts=in_two,
        ngram_sample_texts=sample,
        duplicate_texts=len(keys) - len(labels_of),
        conflicting_duplicates=sum(len(labels) > 1 for labels in labels_of.values()),
        shared_with_train=shared,
        short_texts=int((token_lengths < SHORT_TEXT_TOKENS).sum()),
        skipped_rows=dict(data.skipped_rows),
        train_token_lengths=np.sort(token_lengths),
        seconds=time.perf_counter() - start,
    )


def _duplicate_key(text: str) -> str:
    """What makes two texts the same for duplicate and leakage counts: their words, case aside."""
    return " ".join(text.split()).casefold()


def _given_splits(config: TextDataConfig, splits: Mapping[str, Any]) -> set[str]:
    """The splits the source itself holds (a Hub set's are not told apart from carved ones: all count as given)."""
    if config.train_file:
        return set(config.split_files())
    return {"train"} if config.builtin else set(splits)


def cjk_share_of(texts: Sequence[str], rng: np.random.Generator) -> float:
    """The share of CJK characters among the letters of SCRIPT_SAMPLE_TEXTS texts drawn from ``texts`` by ``rng``."""
    picked = rng.choice(len(texts), size=min(len(texts), SCRIPT_SAMPLE_TEXTS), replace=False)
    sample = "\n".join(texts[int(i)] for i in picked)
    letters = len(_LETTER.findall(sample))
    return len(_CJK.findall(sample)) / letters if letters else 0.0


def train_profile(
    texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, level: Level, cjk_share: float
) -> TextProfile:
    """A :class:`TextProfile` of an already-read train split at ``level`` (``char`` or ``word``): classes, script,
    HTML, lengths and vocabulary; n-grams, duplicates and leakage are not counted."""
    texts = list(texts)
    tokens = tokenize(texts, level)
    frequencies = np.sort(np.bincount(tokens.ids))[::-1] if len(tokens.ids) else np.zeros(0, dtype=np.int64)
    label_counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(label_names))
    present = label_counts[label_counts > 0]
    return TextProfile(
        level=level,
        rows={"train": len(texts)},
        given_splits=["train"],
        label_names=list(label_names),
        class_counts={str(name): int(count) for name, count in zip(label_names, label_counts, strict=False)},
        majority_share=float(label_counts.max() / max(label_counts.sum(), 1)) if len(label_counts) else 0.0,
        imbalance_ratio=float(present.max() / present.min()) if len(present) else 1.0,
        cjk_share=cjk_share,
        html_share=sum(bool(HTML_TAG.search(text)) for text in texts) / max(len(texts), 1),
        char_lengths=LengthStats.of(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))),
        token_lengths=LengthStats.of(tokens.lengths),
        vocabulary_size=len(frequencies),
        token_frequencies=frequencies,
        train_token_lengths=np.sort(tokens.lengths),
    )


class _Tokens(NamedTuple):
    """The tokens of many texts as flat arrays: ``ids`` numbered densely from 0, ``text_of`` each token's text."""

    ids: np.ndarray  # int64
    text_of: np.ndarray  # int64, non-decreasing
    lengths: np.ndarray  # int64, tokens per text


def tokenize(texts: list[str], level: Level) -> _Tokens:
    """The tokens the recipe's tokenizer makes of ``texts`` by its default settings (HTML tags replaced by a space,
    NFKC, lower case; characters without white space, or words split at white space and punctuation), computed on
    all texts at once: training a ``tokenizers`` tokenizer on IMDb and turning its 8 M ids into Python lists took
    longer than everything else. Word tokens isolate every non-space character outside letters and digits, where
    the tokenizer keeps non-ASCII symbols (€, emoji) attached: lengths can differ by such symbols only."""
    joined = _SEPARATOR.join(text.replace(_SEPARATOR, " ") for text in texts)
    normalized = unicodedata.normalize("NFKC", _HTML_TAG_IN_JOINED.sub(" ", joined)).lower()
    if level == "char":
        points = np.frombuffer(normalized.encode("utf-32-le"), dtype=np.uint32)
        separators = points == 0
        keep = ~np.isin(points, _WHITE_SPACE) & ~separators
        text_of = np.cumsum(separators)[keep]
        ids = _dense(points[keep])
    else:
        codes, uniques = pandas.factorize(np.array(_WORD_TOKEN.findall(normalized), dtype=object))
        separator_code = next((i for i, token in enumerate(uniques) if token == _SEPARATOR), -1)
        separators = codes == separator_code
        text_of = np.cumsum(separators)[~separators]
        ids = codes[~separators]
        if separator_code >= 0:  # keep the numbering dense
            ids = np.where(ids > separator_code, ids - 1, ids)
    text_of = text_of.astype(np.int64)
    return _Tokens(ids.astype(np.int64), text_of, np.bincount(text_of, minlength=len(texts)))


def _ngram_counts(
    tokens: _Tokens, sizes: Sequence[int], rng: np.random.Generator
) -> tuple[dict[int, int], dict[int, int], int | None]:
    """Distinct n-grams of each size within the texts, and those found in at least two texts (what the model's
    exact n-gram table ranks by), on a sample of texts when there are more than NGRAM_TOKEN_BUDGET tokens."""
    ids, text_of = tokens.ids, tokens.text_of
    texts, sample = len(tokens.lengths), None
    if len(ids) > NGRAM_TOKEN_BUDGET:
        sample = int(texts * NGRAM_TOKEN_BUDGET / len(ids))
        picked = np.isin(text_of, rng.choice(texts, size=sample, replace=False))
        ids, text_of = ids[picked], text_of[picked]
    vocabulary = int(ids.max()) + 1 if len(ids) else 1
    distinct, in_two = {}, {}
    for n in sizes:
        width = len(ids) - n + 1
        if width <= 0:
            distinct[n] = in_two[n] = 0
            continue
        inside = text_of[:width] == text_of[n - 1 :]  # windows that do not cross from one text into the next
        grams = ids[:width][inside]
        for k in range(1, n):
            grams = _fit_product(grams, vocabulary) * vocabulary + ids[k : k + width][inside]
        # one sort of (n-gram, text) pairs gives both counts: each run of one n-gram is the texts it occurs in
        pairs = _distinct(_fit_product(grams, texts) * texts + text_of[:width][inside]) // texts
        runs = np.diff(np.flatnonzero(np.diff(pairs, prepend=-1, append=-1)))
        distinct[n], in_two[n] = len(runs), int((runs > 1).sum())
    return distinct, in_two, sample


def _fit_product(values: np.ndarray, factor: int) -> np.ndarray:
    """``values``, renumbered densely (same order) if ``values * factor`` could overflow int64."""
    if len(values) and int(values.max()) * factor + factor >= 2**62:
        return _dense(values)
    return values


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct ``values``, sorted. (``np.unique`` of 8 M int64 took 11 s with NumPy 2.4, a sort 0.6 s.)"""
    ordered = np.sort(values)
    return ordered[np.diff(ordered, prepend=ordered[:1] - 1) != 0] if len(ordered) else ordered


def _dense(values: np.ndarray) -> np.ndarray:
    """``values`` renumbered 0, 1, ... in their order (equal values get equal numbers)."""
    return np.searchsorted(_distinct(values), values).astype(np.int64)
