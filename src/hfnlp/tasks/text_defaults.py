"""Data-aware defaults of a text recipe's tokenizer section, and the warning when ``max_length`` truncates.

The tokenizer keys a recipe leaves out (``level``, ``vocab_size``, ``min_frequency``, ``max_length``) are chosen
from the train split by the rules of :mod:`hfnlp.profile.recipe` (:func:`data_aware_defaults`), logged with their
reason and written into the run folder's ``recipe.yaml`` (:func:`record_filled_recipe`); a resumed run takes them
from there (:func:`reuse_saved_tokenizer_values`). Every run warns when ``max_length`` truncates more than
:data:`~hfnlp.profile.recipe.TRUNCATION_WARNING_SHARE` of the training texts (:func:`truncation_warning`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml
from datasets import Column, Dataset
from transformers import PreTrainedTokenizerBase

from hfnlp.profile.recipe import (
    MAX_LENGTH_CAP,
    MAX_LENGTH_STEP,
    TRUNCATION_WARNING_SHARE,
    VOCAB_CAP,
    max_length_of,
    max_length_rule,
    round_up,
    vocabulary_rule,
)
from hfnlp.profile.statistics import CJK_LEVEL_SHARE, LEVEL_REASONS, LengthStats, cjk_share_of, train_profile
from hfnlp.recipe import Recipe, parse_section
from hfnlp.tokenization.text import (
    FALLBACK_DEFAULTS,
    MEASURED_LENGTH,
    SPECIAL_TOKENS,
    TextTokenizerConfig,
    cut_to_token_budget,
    token_lengths,
)
from hfnlp.training.atomic import atomic_path
from hfnlp.training.run_folder import RunFolder

logger = logging.getLogger(__name__)
PROFILED_LEVELS = ("char", "word")  # the levels whose tokens the profile counts (characters, words)
UNITS = {"char": "chars", "word": "words", "jieba": "words", "bpe": "tokens", "wordpiece": "tokens"}


def truncation_warning(lengths: np.ndarray, max_length: int, unit: str, special_tokens: int = 0) -> str | None:
    """The warning for truncation to ``max_length`` cutting more than TRUNCATION_WARNING_SHARE of the texts whose
    token counts (special tokens left out) are ``lengths``, with the max_length that would cover 95% of them (the p95
    rounded up as :mod:`hfnlp.profile.recipe` rounds it); None if it cuts less."""
    if not len(lengths):
        return None
    truncated = float(np.mean(np.asarray(lengths) + special_tokens > max_length))
    if truncated <= TRUNCATION_WARNING_SHARE:
        return None
    p95 = LengthStats.of(np.asarray(lengths)).p95
    return (
        f"tokenizer.max_length {max_length} truncates {truncated:.1%} of the training texts; "
        f"{round_up(p95 + special_tokens, MAX_LENGTH_STEP)} would cover 95% (p95 = {p95:,} {unit})"
    )


def data_aware_defaults(
    config: TextTokenizerConfig, train: Dataset, label_names: Sequence[str], *, seed: int = 42
) -> dict[str, tuple[Any, str]]:
    """``{key: (value, reason)}`` for the tokenizer keys ``config`` leaves out, chosen from the ``train`` split (a
    ``text`` and a ``label`` column) by the rules of :mod:`hfnlp.profile.recipe`:

    * ``level``: ``char`` if at least half the letters are CJK (of a sample drawn with ``seed``), else ``word``;
    * ``max_length``: the p95 train length, rounded up to a multiple of MAX_LENGTH_STEP and capped by level;
    * ``min_frequency``: 2, raised until the vocabulary fits VOCAB_CAP; ``vocab_size``: the tokens seen
      ``min_frequency`` times or more (VOCAB_CAP at most) plus the special tokens.

    Lengths and counts are those of a profile of ``train`` at the level (characters without white space, or words
    split at white space and punctuation; HTML stripped, lower-cased). For a level the profile does not count in
    (``jieba``, ``bpe``, ``wordpiece``) the vocabulary keys get :data:`FALLBACK_DEFAULTS`, and ``max_length`` is
    left out here: :func:`max_length_from_tokenizer` measures it with the trained tokenizer.
    """
    left_out = config.left_out()
    if not left_out:
        return {}
    texts = train["text"][:]
    filled: dict[str, tuple[Any, str]] = {}
    level = config.level
    cjk_share = cjk_share_of(texts, np.random.default_rng(seed))  # 2,000 sampled texts at most
    if level is None:
        level = "char" if cjk_share >= CJK_LEVEL_SHARE else "word"
        filled["level"] = (level, f"{cjk_share:.0%} of the letters are CJK: " + LEVEL_REASONS[level])
    if level not in PROFILED_LEVELS:
        reason = f"the fixed default: the profile counts characters and words, not {level} tokens"
        filled.update(
            {key: (FALLBACK_DEFAULTS[key], reason) for key in ("vocab_size", "min_frequency") if key in left_out}
        )
        return filled
    if not {"max_length", "vocab_size", "min_frequency"} & set(left_out):
        return filled
    profile = train_profile(texts, train["label"][:], label_names, level=level, cjk_share=cjk_share)
    if "max_length" in left_out:
        filled["max_length"] = max_length_rule(profile)
    if "min_frequency" in left_out:
        min_frequency, vocab_size, reasons = vocabulary_rule(profile)
        filled["min_frequency"] = (min_frequency, reasons["tokenizer.min_frequency"])
        if "vocab_size" in left_out:
            filled["vocab_size"] = (vocab_size, reasons["tokenizer.vocab_size"])
    elif "vocab_size" in left_out:  # min_frequency given: every token it keeps, up to VOCAB_CAP
        kept = profile.tokens_seen_at_least(config.min_frequency or 1)
        reason = (
            f"the {kept:,} {profile.unit} seen {config.min_frequency}+ times + {len(SPECIAL_TOKENS)} special tokens"
        )
        if kept > VOCAB_CAP:
            kept, reason = VOCAB_CAP, reason + f", capped at {VOCAB_CAP:,}"
        filled["vocab_size"] = (kept + len(SPECIAL_TOKENS), reason)
    return {key: filled[key] for key in TextTokenizerConfig.__dataclass_fields__ if key in filled}


def max_length_from_tokenizer(
    tokenizer: PreTrainedTokenizerBase, train_texts: Sequence[str] | Column, level: str
) -> tuple[int, str]:
    """``max_length`` by the profile's rule (p95 rounded up to MAX_LENGTH_STEP, capped) on the token counts of the
    trained ``tokenizer`` itself: for levels the profile does not count in (``jieba``, ``bpe``, ``wordpiece``,
    capped as words)."""
    cap = MAX_LENGTH_CAP.get(level, MAX_LENGTH_CAP["word"])
    lengths = token_lengths(tokenizer, cut_to_token_budget(train_texts, max(cap, MEASURED_LENGTH)))
    return max_length_of(LengthStats.of(lengths).p95, cap, f"{level} {UNITS.get(level, 'tokens')}")


def reuse_saved_tokenizer_values(recipe: Recipe, run: RunFolder, *, resume: bool) -> None:
    """Give the tokenizer keys ``recipe`` leaves out the values the run folder's ``recipe.yaml`` holds, where the run
    continues what that recipe produced (``resume``, or a trained tokenizer there): the same values as the run
    chose from its data then, or the fixed defaults a run before data-aware defaults wrote."""
    left_out = recipe.tokenizer.left_out() if isinstance(recipe.tokenizer, TextTokenizerConfig) else []
    if not left_out or not run.recipe_path.is_file() or not (resume or run.tokenizer_dir.exists()):
        return
    try:
        saved = yaml.safe_load(run.recipe_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # the run folder's own check (RunFolder.prepare) reports an unreadable recipe.yaml
    section = saved.get("tokenizer") if isinstance(saved, dict) else None
    values = {key: section[key] for key in left_out if isinstance(section, dict) and section.get(key) is not None}
    if not values:
        return
    recipe.tokenizer = parse_section(
        TextTokenizerConfig, {**dataclasses.asdict(recipe.tokenizer), **values}, "tokenizer"
    )
    for key, value in values.items():
        logger.info("tokenizer.%s: %s, as %s holds (the recipe leaves it out)", key, value, run.recipe_path)


def record_filled_recipe(run: RunFolder, recipe: Recipe) -> None:
    """Rewrite the run folder's ``recipe.yaml`` with the values filled in, unless it holds them already (as it does
    for the other processes of an ``accelerate launch``, which follow the main process that wrote it)."""
    as_saved = yaml.safe_load(yaml.safe_dump(recipe.to_dict(), allow_unicode=True))
    try:
        if yaml.safe_load(run.recipe_path.read_text(encoding="utf-8")) == as_saved:
            return
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        pass
    with atomic_path(run.recipe_path) as staged:
        recipe.save(staged)
