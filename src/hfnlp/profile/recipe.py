"""Profile → recipe: the text-classification recipe a :class:`~hfnlp.profile.statistics.TextProfile` chooses.

:func:`recipe_from_profile` turns a profile into a complete recipe whose every value comes from a stated rule over
its statistics or from the literature, never from tuning on one data set; :meth:`RecipeDraft.to_yaml` writes it
with a comment naming why each value was chosen.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hfnlp.data.reading import SPLIT_ALIASES
from hfnlp.profile.statistics import LEVEL_REASONS, TextProfile
from hfnlp.tokenization.text import SPECIAL_TOKENS

# Tokens a text keeps at most, for memory: the p95 rule decides below it. The auto mode's models (bags, TextCNN over
# length-grouped batches) cost time linear in the tokens kept, so a long review is read whole (a 512-word cap cut 11.5%
# of IMDb's training reviews; the shipped sequence recipes set their own max_length).
MAX_LENGTH_CAP = {"word": 1024, "char": 1024}
MAX_LENGTH_STEP = 16  # max_length is rounded up to a multiple: a slightly different file gives the same recipe
TRUNCATION_WARNING_SHARE = 0.05  # max_length covers p95: cutting more means the cap bit, which the user should know
VOCAB_CAP = 100_000  # token rows at most: 100 k × 256 floats × 3 (weights and Adam's two moments) = 300 MB
# N-gram rows at most: 1 M × 256 floats = 1 GB of weights, 3 GB with Adam's moments (the shipped 500 k-row
# wide MLP peaked at 3.2 GB on THUCNews).
NGRAM_TABLE_CAP = 1_000_000
NGRAM_TABLE_STEP = 10_000  # the table is rounded up to a multiple: a slightly different file gives the same recipe
# Character n-grams of each word for alphabetic scripts: fastText's subword lengths are 3-6 (Bojanowski et al.
# 2017); 3-5 keeps a word's n-grams at 3 per letter. A word brings about SUBWORDS_PER_WORD n-grams no other word of
# the vocabulary has (measured on the words seen twice or more: 4.2 in AG News' 13k, 2.7 in IMDb's 47k).
SUBWORD_SIZES = [3, 4, 5]
SUBWORDS_PER_WORD = 4
SUBWORD_TABLE_CAP = 200_000  # 200 k × 256 floats = 200 MB of weights
# Character n-grams only where texts are short (median words at most this): a short text has few words to go on,
# and there subwords help most (AG News, median 45 words: test +0.9 and +0.7 points for the two bags); on long texts
# the words carry the evidence (IMDb with LinearSVC: word 1-2-grams 0.905, char_wb 1-5-grams 0.886) while subwords
# would triple the step time (2.9× on AG News: about 12 features more per word).
SUBWORD_MAX_MEDIAN_WORDS = 100
EMBEDDING_DIM = 256  # the shipped wide MLP's width; Galke & Scherp's 1,024 would make every table 4× larger
BATCH_SIZES = (64, 32, 16)
MIN_STEPS_PER_EPOCH = 500
# The shipped THUCNews wide MLP reached its best validation score within its 8 × 525 = 4,200 updates; the one
# measured anchor, given some margin. Early stopping ends a run that needs fewer.
UPDATE_BUDGET = 5_000
EPOCH_RANGE = (3, 30)
# Majority class 1.5× the rarest or more: accuracy starts to reward leaning to it (a judgement, not a measured
# threshold; at 1:1 both metrics pick the same checkpoint anyway).
MACRO_F1_IMBALANCE = 1.5
EVAL_ROWS_OF_RAREST_CLASS = 25
SPLIT_RATIOS = (0.1, 0.15, 0.2)  # 10% each is the usual hold-out; up to 20% for small or imbalanced sets
# Why each fixed model and training value was chosen (by dotted key): values no statistic of the data changes.
FIXED_REASONS = {
    "model.type": "the wide MLP over TF-IDF bags of n-grams (Galke & Scherp, ACL 2022): as good as or better than "
    "sequence models on topic and sentiment sets, and fast",
    "model.pooling": "sublinear TF-IDF weights, L2-normalised (Galke & Scherp's TF-IDF input)",
    "model.exact_ngrams": "a row per n-gram, no hash collisions",
    "model.embedding_dim": "width of the bag layer; 256 keeps a 1 M-row table at 1 GB (Galke & Scherp: 1,024)",
    "model.bag_activation": "bias + ReLU on the bag: the table is the MLP's wide hidden layer",
    "model.hidden_size": "one hidden layer, the bag itself (Galke & Scherp's default)",
    "model.dropout": "Galke & Scherp's dropout on the hidden layer (Srivastava et al. 2014)",
    "model.sparse_embeddings": "an update touches only the rows a batch uses (lazy Adam)",
    "model.initializer": "N(0, 0.02) start, as the shipped wide-MLP recipe",
    "model.initialize_embeddings": "the tables are the hidden layer: they start as the other weights do",
    "model.freeze_embeddings": "no pretrained vectors: every row is learnt",
    "model.table_storage": "trained in float32, saved as int8 rows with a scale each: a quarter of the model folder, "
    "logits within about 1%",
    "training.learning_rate": "Adam's 1e-3 (Kingma & Ba 2015), Galke & Scherp's rate at batch 16 and the shipped "
    "wide MLP's at 64",
    "training.warmup_steps": "none, as Galke & Scherp and the shipped wide-MLP recipe",
    "training.weight_decay": "none, as Galke & Scherp; dropout 0.5 and label smoothing regularise",
    "training.max_grad_norm": "the transformers default: a guard against a rare huge step",
    "training.eval_strategy": "validate every epoch: early stopping and the best checkpoint need it",
    "training.lr_scheduler_type": "constant; early stopping picks the epoch instead of a decay schedule",
    "training.label_smoothing_factor": "Szegedy et al. 2016; as the shipped wide-MLP recipe",
    "training.early_stopping_patience": "stop after 3 epochs without a better validation score",
    "training.group_by_length": "a bag has no padding cost; random batches",
    "training.mixed_precision": "fp32, as the shipped wide-MLP recipe (bf16 gained nothing there)",
    "training.extra_args": "checkpoints hold the weights (the best one becomes the model), not Adam's two moments "
    "(twice the weights): a third of the disk and writing time; an interrupted candidate is trained again",
}


@dataclass
class RecipeDraft:
    """A recipe chosen from a profile: the plain data ``recipe`` (what :func:`hfnlp.tasks.recipe_from_dict`
    takes), ``why`` each value was chosen (by dotted key), ``warnings`` and ``header`` lines for the YAML file."""

    recipe: dict[str, Any]
    why: dict[str, str]
    warnings: list[str]
    header: list[str]

    def to_yaml(self) -> str:
        """The recipe as YAML, each chosen value followed by a comment saying why, warnings at the top.

        Written line by line (PyYAML cannot write comments); every value is rendered so that YAML reads it back as
        the same Python value, which ``tests/test_profile.py`` checks through :func:`hfnlp.tasks.load_recipe`.
        """
        lines = [f"# {line}" for line in self.header] + [f"# WARNING: {warning}" for warning in self.warnings]
        for key, value in self.recipe.items():
            if isinstance(value, Mapping):
                lines.append(f"{key}:")
                lines += [_yaml_line(f"  {sub}", item, self.why.get(f"{key}.{sub}")) for sub, item in value.items()]
            else:
                lines.append(_yaml_line(key, value, self.why.get(key)))
        return "\n".join(lines) + "\n"


def recipe_from_profile(
    profile: TextProfile,
    data: Mapping[str, Any],
    *,
    output_dir: str | None = None,
    seed: int = 42,
    guessed: Mapping[str, str] | None = None,
) -> RecipeDraft:
    """A complete text-classification recipe for the profiled data: the wide MLP over TF-IDF bags of n-grams
    (Galke & Scherp, ACL 2022), every value chosen by a rule over ``profile`` stated in its comment.

    ``data`` is the recipe's ``data`` section as far as the user described it (source files, format, columns,
    label set); the split ratios and the label names are added here. ``output_dir`` defaults to
    ``runs/<train file name>-wide-mlp``. ``guessed`` says why for the ``data`` keys that were guessed (as
    :func:`guess_data_section` returns them).
    """
    why: dict[str, str] = dict(guessed or {})
    warnings = profile.warnings()

    data_section = dict(data)
    ratios = _split_ratios(profile)
    for split, (ratio, reason) in ratios.items():
        data_section[f"{split}_ratio"] = ratio
        why[f"data.{split}_ratio"] = reason
    if not data_section.get("label_file") and not data_section.get("label_names"):
        data_section["label_names"] = list(profile.label_names)
        why["data.label_names"] = "as the data layer resolved them: fixes the class ids"
    carved_share = sum(ratio for ratio, _ in ratios.values())
    train_rows = round(profile.rows["train"] * (1 - carved_share))

    max_length, reason = max_length_rule(profile)
    why["tokenizer.max_length"] = reason
    truncated = profile.share_longer_than(max_length)
    if truncated > TRUNCATION_WARNING_SHARE:
        warnings.append(
            f"tokenizer.max_length {max_length} truncates {truncated:.1%} of the training texts; "
            f"{round_up(profile.token_lengths.p95, MAX_LENGTH_STEP)} would cover 95% "
            f"(p95 = {profile.token_lengths.p95:,} {profile.unit})"
        )
    min_frequency, vocab_size, vocab_reasons = vocabulary_rule(profile)
    why.update(vocab_reasons)
    tokenizer = {
        "level": profile.level,
        "vocab_size": vocab_size,
        "min_frequency": min_frequency,
        "max_length": max_length,
        "lowercase": True,
        "strip_html": profile.html_share > 0,
        "punctuation": "split",
    }
    why["tokenizer.level"] = f"{profile.cjk_share:.0%} of the letters are CJK: " + LEVEL_REASONS[profile.level]
    why["tokenizer.lowercase"] = "case rarely carries the class in a bag of n-grams (scikit-learn's TF-IDF default)"
    why["tokenizer.strip_html"] = f"{profile.html_share:.1%} of the training texts hold an HTML tag"
    why["tokenizer.punctuation"] = "marks become tokens of their own: '!' and '?' stay features, words stay clean"

    ngram_sizes, ngram_buckets, ngram_reasons = _ngram_table(profile)
    why.update(ngram_reasons)
    model = {
        "type": "fasttext",
        "pooling": "tfidf",
        "exact_ngrams": True,
        "ngram_sizes": ngram_sizes,
        "ngram_buckets": ngram_buckets,
        "embedding_dim": EMBEDDING_DIM,
        "bag_activation": "relu",
        "hidden_size": 0,
        "dropout": 0.5,
        "sparse_embeddings": True,
        "initializer": "normal",
        "initialize_embeddings": True,
        "freeze_embeddings": False,
        "table_storage": "int8",
    }
    why.update(FIXED_REASONS)
    if profile.level == "word" and profile.token_lengths.p50 <= SUBWORD_MAX_MEDIAN_WORDS:
        subwords, subword_reasons = _subword_table(vocab_size, profile.token_lengths.p50)
        model.update(subwords)
        why.update(subword_reasons)

    batch_size, epochs, training_reasons = _schedule(train_rows)
    why.update(training_reasons)
    macro = profile.imbalance_ratio >= MACRO_F1_IMBALANCE
    training = {
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch_size,
        "learning_rate": 1.0e-3,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "label_smoothing_factor": 0.1,
        "eval_strategy": "epoch",
        "metric_for_best_model": "macro_f1" if macro else "accuracy",
        "early_stopping_patience": 3,
        "group_by_length": False,
        "mixed_precision": "no",
        "extra_args": {"save_only_model": True},
    }
    why["training.metric_for_best_model"] = (
        f"imbalance {profile.imbalance_ratio:.1f}:1 ≥ {MACRO_F1_IMBALANCE}: accuracy rewards the majority class "
        f"({profile.majority_share:.1%} by always guessing it); macro-F1 weighs every class (He & Garcia 2009)"
        if macro
        else f"imbalance {profile.imbalance_ratio:.1f}:1 < {MACRO_F1_IMBALANCE}: accuracy is fair to every class"
    )

    source = Path(str(data.get("train_file") or data.get("hub") or data.get("builtin") or "data"))
    # train.txt / aclImdb/train name a split, not the data set: the folder above names it
    stem = source.parent.name if source.stem.lower() in SPLIT_ALIASES else source.stem
    recipe = {
        "task": "text-classification",
        "description": f"Wide MLP over TF-IDF bags of {profile.level} n-grams for {stem} "
        f"({len(profile.label_names)} classes), chosen by hfnlp recipe from a profile of the data.",
        "output_dir": output_dir or f"runs/{stem}-wide-mlp",
        "seed": seed,
        "data": data_section,
        "tokenizer": tokenizer,
        "model": model,
        "training": training,
    }
    header = [
        "Written by `hfnlp recipe` from a profile of the data: every value below is chosen by the rule in its comment.",
        *profile.describe(),
    ]
    return RecipeDraft(recipe=recipe, why=why, warnings=warnings, header=header)


def _split_ratios(profile: TextProfile) -> dict[str, tuple[float, str]]:
    """Ratios for the splits the data lacks: the smallest of SPLIT_RATIOS that puts EVAL_ROWS_OF_RAREST_CLASS rows of
    the rarest class in each carved split (stratified), so that its recall is measured within ±0.1: the standard
    error of a share measured on k rows is at most 0.5/√k, 0.1 at k = 25."""
    missing = [split for split in ("validation", "test") if split not in profile.given_splits]
    if not missing:
        return {}
    rarest = min(profile.class_counts.values())
    ratio = next((r for r in SPLIT_RATIOS if r * rarest >= EVAL_ROWS_OF_RAREST_CLASS), SPLIT_RATIOS[-1])
    reason = (
        f"carved stratified: {ratio:.0%} of the rarest class's {rarest:,} train rows is ≥ "
        f"{EVAL_ROWS_OF_RAREST_CLASS} (recall within ±0.1)"
        if ratio * rarest >= EVAL_ROWS_OF_RAREST_CLASS
        else f"carved stratified: the most ({ratio:.0%}); the rarest class has only {rarest:,} train rows"
    )
    return {split: (ratio, reason) for split in missing}


def max_length_rule(profile: TextProfile) -> tuple[int, str]:
    """The p95 train length rounded up to a multiple of MAX_LENGTH_STEP, capped at MAX_LENGTH_CAP: the bag keeps
    95% of the texts whole while a few outliers do not set the cost of every batch."""
    return max_length_of(profile.token_lengths.p95, MAX_LENGTH_CAP[profile.level], profile.unit)


def max_length_of(p95: int, cap: int, unit: str) -> tuple[int, str]:
    """:func:`max_length_rule` for a p95 train length of ``p95`` ``unit`` and a cap of ``cap``, with its reason."""
    value = min(max(round_up(p95, MAX_LENGTH_STEP), MAX_LENGTH_STEP), cap)
    reason = f"p95 of train lengths in {unit} is {p95:,}"
    if value < p95:
        reason += f", capped at {cap} for memory and time"
    return value, reason


def vocabulary_rule(profile: TextProfile) -> tuple[int, int, dict[str, str]]:
    """``min_frequency`` 2 (Yang & Pedersen, ICML 1997: dropping the rarest terms by frequency costs no accuracy; a
    token seen once has one training text to learn its row from), raised until the vocabulary fits VOCAB_CAP;
    ``vocab_size`` is every token kept plus the special tokens."""
    min_frequency = 2
    while profile.tokens_seen_at_least(min_frequency) > VOCAB_CAP:
        min_frequency += 1
    kept = profile.tokens_seen_at_least(min_frequency)
    reasons = {
        "tokenizer.min_frequency": f"{kept:,} of {profile.vocabulary_size:,} {profile.unit} occur {min_frequency}+ "
        "times; rarer ones have too few texts to learn from (Yang & Pedersen 1997)"
        + (f", and the vocabulary must fit {VOCAB_CAP:,}" if min_frequency > 2 else ""),
        "tokenizer.vocab_size": f"the {kept:,} {profile.unit} kept + {len(SPECIAL_TOKENS)} special tokens",
    }
    return min_frequency, kept + len(SPECIAL_TOKENS), reasons


def _ngram_table(profile: TextProfile) -> tuple[list[int], int, dict[str, str]]:
    """N-gram orders and a table holding every n-gram found in two or more train texts.

    1-3-grams when they fit NGRAM_TABLE_CAP rows, else 1-2-grams. Words: bigrams help sentiment consistently and
    topics somewhat (Wang & Manning, ACL 2012), trigrams add more on long reviews (Mesnil et al. 2014: NBSVM with
    1-3-grams is their best single model on IMDb); n-grams that never repeat are left out anyway. Characters: a CJK
    word is one to three characters. N-grams of one text only are left out, as rare words are (Yang & Pedersen
    1997)."""
    counts = profile.ngram_counts_in_two_texts
    with_trigrams = counts.get(2, 0) + counts.get(3, 0)
    sizes = [2, 3] if with_trigrams <= NGRAM_TABLE_CAP else [2]
    wanted = sum(counts.get(n, 0) for n in sizes)
    rows = max(min(round_up(wanted, NGRAM_TABLE_STEP), NGRAM_TABLE_CAP), NGRAM_TABLE_STEP)
    orders = "1-" + str(max(sizes))
    sampled = f" (counted on {profile.ngram_sample_texts:,} sampled texts)" if profile.ngram_sample_texts else ""
    reasons = {
        "model.ngram_sizes": f"{profile.unit} {orders}-grams: {with_trigrams:,} 2-3-grams in 2+ texts"
        + (f" fit {NGRAM_TABLE_CAP:,} rows" if len(sizes) == 2 else f" exceed {NGRAM_TABLE_CAP:,} rows")
        + (" (Wang & Manning 2012; Mesnil et al. 2014)" if profile.level == "word" else " (a CJK word is 1-3 chars)"),
        "model.ngram_buckets": f"{wanted:,} n-grams occur in 2+ train texts{sampled}"
        + (f"; capped at {NGRAM_TABLE_CAP:,} rows (~3 GB with Adam's moments)" if wanted > NGRAM_TABLE_CAP else ""),
    }
    return sizes, rows, reasons


def _subword_table(vocab_size: int, median_words: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Character n-grams of every word (fastText's subword features; scikit-learn's ``char_wb``): word and character
    n-gram TF-IDF in one bag, which beats either alone on English topics and reviews (the char_wb bag's edge on
    small sets comes from rare and misspelt words sharing n-grams with known ones)."""
    rows = max(min(round_up(SUBWORDS_PER_WORD * vocab_size, NGRAM_TABLE_STEP), SUBWORD_TABLE_CAP), NGRAM_TABLE_STEP)
    keys = {"subword_sizes": SUBWORD_SIZES, "subword_buckets": rows}
    reasons = {
        "model.subword_sizes": f"median text {median_words} words ≤ {SUBWORD_MAX_MEDIAN_WORDS}: character 3-5-grams "
        "of each word between < and > (fastText's subwords, Bojanowski et al. 2017), rare and misspelt words share "
        "features with known ones",
        "model.subword_buckets": f"about {SUBWORDS_PER_WORD} n-grams of its own per word of the {vocab_size:,}-entry "
        f"vocabulary, hashed; {SUBWORD_TABLE_CAP:,} rows at most",
    }
    return keys, reasons


def _schedule(train_rows: int) -> tuple[int, int, dict[str, str]]:
    """Batch size and epochs from the number of training rows.

    Batch: the largest of BATCH_SIZES that still gives MIN_STEPS_PER_EPOCH updates an epoch, 16 at least (Galke &
    Scherp's batch size, on sets of 3-11k texts; small batches generalise better, Masters & Luschi 2018). Epochs:
    enough for UPDATE_BUDGET updates, within EPOCH_RANGE: large sets need fewer passes; early stopping ends sooner.
    """
    batch = next((b for b in BATCH_SIZES if train_rows / b >= MIN_STEPS_PER_EPOCH), BATCH_SIZES[-1])
    steps = max(math.ceil(train_rows / batch), 1)
    epochs = min(max(math.ceil(UPDATE_BUDGET / steps), EPOCH_RANGE[0]), EPOCH_RANGE[1])
    return (
        batch,
        epochs,
        {
            "training.per_device_train_batch_size": f"{train_rows:,} train rows: the largest of 64/32/16 giving "
            f"{MIN_STEPS_PER_EPOCH}+ updates an epoch (Masters & Luschi 2018: small batches generalise better)",
            "training.num_train_epochs": f"{steps:,} updates an epoch: about {UPDATE_BUDGET:,} updates in all, "
            f"within {EPOCH_RANGE[0]}-{EPOCH_RANGE[1]} epochs; early stopping may end sooner",
        },
    )


def round_up(value: int, step: int) -> int:
    """``value`` rounded up to a multiple of ``step``."""
    return -(-value // step) * step


def _yaml_line(key: str, value: Any, comment: str | None) -> str:
    line = f"{key}: {_yaml_value(value)}"
    return f"{line}  # {comment}" if comment else line


def _yaml_value(value: Any) -> str:
    """``value`` (None, bool, number, string, or a list or mapping of them) as a YAML flow scalar, sequence or
    mapping."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        # YAML 1.1 (PyYAML) reads 1e-05 as a string: its floats need a dot in the mantissa.
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_yaml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_yaml_value(key)}: {_yaml_value(item)}" for key, item in value.items()) + "}"
    text = str(value)
    if re.fullmatch(r"[\w./-]+", text) and yaml.safe_load(text) == text:  # a path or a name, read back as itself
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
