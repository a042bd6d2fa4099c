"""Pure-Python COCO caption metrics: tokenisation, BLEU-1..4, CIDEr-D and ROUGE-L.

The scores reproduce ``pycocoevalcap`` (``Bleu(4)``, ``Cider()``, ``Rouge()``) on the same tokenised
captions, quirks included, without Java and without its 100 MB of jars:

* BLEU: corpus-level, "closest" reference length, the same ``1e-15`` / ``1e-9`` smoothing constants.
* CIDEr-D: document frequencies come from the references of the evaluated set (so one image alone
  scores 0), ``sigma=6`` Gaussian length penalty, clipping, ``x10``.
* ROUGE-L: LCS F-measure with ``beta=1.2``, best precision and best recall over the references taken
  separately, averaged over images; captions are split on single spaces as in ``pycocoevalcap``.

:func:`coco_tokenize` stands in for COCO's Java ``PTBTokenizer -preserveLines -lowerCase`` followed by
the removal of COCO's punctuation list. It reproduces what PTB does to ordinary caption text:
lower-casing; splitting off ``. , ; : ! ? ' " ` ( ) { } [ ]``, runs of dots/dashes and Unicode
quotes/dashes; splitting clitics (``don't`` -> ``do n't``, ``man's`` -> ``man 's``, ``cannot`` ->
``can not``, ``gonna`` -> ``gon na``); keeping ``u.s.``, ``p.m.``, ``mr.``, ``1,000``, ``3.5``,
``black-and-white``, ``dog/cat`` as single tokens; keeping ``!!`` / ``?!`` and the lower-cased bracket
tokens ``-lrb-`` ... that COCO's (upper-case) punctuation list misses. It does not copy PTB's rarer rules
(unit splitting such as ``3:30pm`` -> ``3:30 pm``, case-sensitive acronyms such as ``AT&T``, signed
numbers, PTB's full abbreviation list), so captions using those may tokenise slightly differently.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

NGRAM_ORDER = 4
CIDER_SIGMA = 6.0
ROUGE_BETA = 1.2

# COCO's PUNCTUATIONS in the raw forms PTB maps onto them: quotes become `` '' ` ', runs of dots "...",
# runs of dashes "--".
_REMOVED_TOKEN_RE = re.compile(r"""\.+|-+|[?!,:;"'`]|``|''""")
# Abbreviations whose period PTB keeps (a subset of its list: titles, months, places, companies, units).
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "jr", "sr", "gen", "lt", "sgt", "capt", "col", "rev", "gov", "sen"}
    | {"rep", "hon", "co", "inc", "ltd", "corp", "bros", "dept", "est", "etc", "vs"}
    | {"st", "mt", "ave", "rd", "blvd", "ft"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
)
_TRANSLATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": " -- ",
        "\u2014": " -- ",
        "\u2026": " ... ",
        "(": " -lrb- ",
        ")": " -rrb- ",
        "[": " -lsb- ",
        "]": " -rsb- ",
        "{": " -lcb- ",
        "}": " -rcb- ",
        "\n": " ",
    }
)
_SPLIT_WORDS_RE = re.compile(r"\b(can(?=not\b)|gon(?=na\b)|got(?=ta\b)|wan(?=na\b))", re.IGNORECASE)
_NEGATION_RE = re.compile(r"(?<=\w)(n't)\b", re.IGNORECASE)
_CLITIC_RE = re.compile(r"(?<=\w)('(?:s|re|ve|ll|d|m))\b", re.IGNORECASE)
_TOKEN_RE = re.compile(
    r"""-(?:lrb|rrb|lsb|rsb|lcb|rcb)-      # bracket tokens made by _TRANSLATION
    | '(?:s|re|ve|ll|d|m)\b | 'n'         # clitics split off by _CLITIC_RE, rock 'n' roll
    | \d{1,3}(?:,\d{3})+(?:\.\d+)?         # 1,000 and 12,345.6
    | \w+(?:[./:@'-]\w+)*\.?               # words, u.s., 3.5, black-and-white, n't; a final "." is checked
    | \.{2,} | -{2,} | ``|'' | [!?]+       # runs PTB keeps as one token
    | \S""",
    re.VERBOSE | re.IGNORECASE,
)


def _keeps_period(stem: str) -> bool:
    """Whether PTB keeps the period after ``stem``: acronyms (u.s.), abbreviations (mr.), initials (J.)."""
    return "." in stem or stem.lower() in _ABBREVIATIONS or (len(stem) == 1 and stem.isupper())


def coco_tokenize(caption: str) -> str:
    """Tokenise ``caption`` as COCO caption evaluation does (PTB tokens, lower-cased, punctuation removed).

    Returns the tokens joined by single spaces ("" when nothing is left).
    """
    text = _SPLIT_WORDS_RE.sub(r"\1 ", caption.translate(_TRANSLATION))
    text = _CLITIC_RE.sub(r" \1", _NEGATION_RE.sub(r" \1", text))
    tokens = []
    for token in _TOKEN_RE.findall(text):
        if len(token) > 1 and token.endswith(".") and token[0] != "." and not _keeps_period(token[:-1]):
            token = token[:-1]  # sentence-final period: PTB splits it off and COCO removes it
        if not _REMOVED_TOKEN_RE.fullmatch(token):
            tokens.append(token.lower())
    return " ".join(tokens)


def _check_inputs(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"got {len(predictions)} predictions but {len(references)} reference lists; "
            "give exactly one list of reference captions per prediction"
        )
    if not predictions:
        raise ValueError("no predictions to score: predictions and references are empty")
    for index, refs in enumerate(references):
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"references[{index}] must be a non-empty list of captions, got {refs!r}")


def prepare_captions(
    predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
) -> tuple[list[str], list[list[str]]]:
    """Check caption inputs and COCO-tokenise every caption if ``tokenize``.

    Raises ValueError when the lengths differ, the lists are empty or an image has no reference.
    """
    _check_inputs(predictions, references)
    if not tokenize:
        return list(predictions), [list(refs) for refs in references]
    return [coco_tokenize(p) for p in predictions], [[coco_tokenize(r) for r in refs] for refs in references]


def _ngrams(words: list[str], max_order: int = NGRAM_ORDER) -> Counter[tuple[str, ...]]:
    """Counts of all 1..max_order-grams of ``words``."""
    ngrams = (tuple(words[i : i + n]) for n in range(1, max_order + 1) for i in range(len(words) - n + 1))
    return Counter(ngrams)


def corpus_bleu(
    predictions: Sequence[str], references: Sequence[Sequence[str]], max_order: int = NGRAM_ORDER
) -> list[float]:
    """Corpus-level BLEU-1..``max_order`` of tokenised captions, as ``pycocoevalcap.bleu.Bleu``.

    ``predictions[i]`` is scored against every caption in ``references[i]``; captions are split on
    whitespace. Uses the reference length closest to each prediction's length (shorter one on ties).
    """
    _check_inputs(predictions, references)
    tiny, small = 1e-15, 1e-9
    test_length = ref_length = 0
    guess = [0] * max_order
    correct = [0] * max_order
    for prediction, refs in zip(predictions, references, strict=True):
        words = prediction.split()
        max_ref_counts: Counter[tuple[str, ...]] = Counter()
        ref_lengths = []
        for ref in refs:
            ref_words = ref.split()
            ref_lengths.append(len(ref_words))
            max_ref_counts |= _ngrams(ref_words, max_order)
        test_length += len(words)
        ref_length += min((abs(length - len(words)), length) for length in ref_lengths)[1]
        for ngram, count in _ngrams(words, max_order).items():
            correct[len(ngram) - 1] += min(count, max_ref_counts[ngram])
        for order in range(max_order):
            guess[order] += max(0, len(words) - order)
    ratio = (test_length + tiny) / (ref_length + small)
    brevity_penalty = math.exp(1 - 1 / ratio) if ratio < 1 else 1.0
    scores = []
    product = 1.0
    for order in range(max_order):
        product *= (correct[order] + tiny) / (guess[order] + small)
        scores.append(product ** (1 / (order + 1)) * brevity_penalty)
    return scores


def _tfidf(
    counts: Counter[tuple[str, ...]], log_doc_freq: dict[tuple[str, ...], float], log_num_docs: float
) -> tuple[list[dict[tuple[str, ...], float]], list[float]]:
    """Per-order tf-idf vectors of a caption's n-gram counts, and their norms."""
    vectors: list[dict[tuple[str, ...], float]] = [{} for _ in range(NGRAM_ORDER)]
    squared_norms = [0.0] * NGRAM_ORDER
    for ngram, term_freq in counts.items():
        order = len(ngram) - 1
        weight = term_freq * (log_num_docs - log_doc_freq.get(ngram, 0.0))
        vectors[order][ngram] = weight
        squared_norms[order] += weight * weight
    return vectors, [math.sqrt(value) for value in squared_norms]


def cider_d(
    predictions: Sequence[str], references: Sequence[Sequence[str]], sigma: float = CIDER_SIGMA
) -> tuple[float, list[float]]:
    """CIDEr-D of tokenised captions as ``pycocoevalcap.cider.Cider``: (corpus mean, per-image scores).

    Document frequencies (the idf) are computed from the references of the evaluated set itself.
    """
    _check_inputs(predictions, references)
    ref_words = [[ref.split() for ref in refs] for refs in references]
    ref_counts = [[_ngrams(words) for words in refs] for refs in ref_words]
    doc_freq: Counter[tuple[str, ...]] = Counter()
    for counts in ref_counts:
        doc_freq.update(set().union(*counts))
    log_doc_freq = {ngram: math.log(freq) for ngram, freq in doc_freq.items()}
    log_num_docs = math.log(len(references))
    scores = []
    for prediction, refs, counts in zip(predictions, ref_words, ref_counts, strict=True):
        words = prediction.split()
        vec, norm = _tfidf(_ngrams(words), log_doc_freq, log_num_docs)
        total = [0.0] * NGRAM_ORDER
        for ref, ref_ngrams in zip(refs, counts, strict=True):
            vec_ref, norm_ref = _tfidf(ref_ngrams, log_doc_freq, log_num_docs)
            # pycocoevalcap counts lengths in bigrams: the same difference when both captions have
            # words, and an empty caption has similarity 0 whatever the penalty
            penalty = math.exp(-((len(words) - len(ref)) ** 2) / (2 * sigma**2))
            for order in range(NGRAM_ORDER):
                ref_order = vec_ref[order]
                value = sum(
                    min(weight, ref_order.get(ngram, 0.0)) * ref_order.get(ngram, 0.0)
                    for ngram, weight in vec[order].items()
                )
                if norm[order] != 0 and norm_ref[order] != 0:
                    value /= norm[order] * norm_ref[order]
                total[order] += value * penalty
        scores.append(sum(total) / NGRAM_ORDER / len(counts) * 10.0)
    return sum(scores) / len(scores), scores


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (bit-parallel, Crochemore et al.)."""
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()


def rouge_l(
    predictions: Sequence[str], references: Sequence[Sequence[str]], beta: float = ROUGE_BETA
) -> tuple[float, list[float]]:
    """ROUGE-L of tokenised captions as ``pycocoevalcap.rouge.Rouge``: (corpus mean, per-image scores)."""
    _check_inputs(predictions, references)
    scores = []
    for prediction, refs in zip(predictions, references, strict=True):
        words = prediction.split(" ")
        precision = recall = 0.0
        for ref in refs:
            ref_words = ref.split(" ")
            lcs = _lcs_length(ref_words, words)
            precision = max(precision, lcs / len(words))
            recall = max(recall, lcs / len(ref_words))
        if precision and recall:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return sum(scores) / len(scores), scores
