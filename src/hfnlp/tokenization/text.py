"""Tokenizers for text classification, trained once on the train split with 🤗 ``tokenizers``.

The trained tokenizer is saved in the run folder as a ``PreTrainedTokenizerFast`` together with the
settings it was trained with and a fingerprint of its training texts; resume, evaluate and predict load it from
there and never rebuild it (a rebuilt vocabulary reorders ids and silently ruins a trained model), and a re-run or
resume refuses it when its settings or training texts differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from hfnlp.errors import DataError, RecipeError
from hfnlp.tokenization.tokenization_jieba import JiebaTokenizerFast, jieba_pre_tokenizer

if TYPE_CHECKING:
    from hfnlp.tokenization.char_level import CharPipeline

PAD_TOKEN, UNK_TOKEN = "[PAD]", "[UNK]"
SPECIAL_TOKENS = [PAD_TOKEN, UNK_TOKEN]
MODEL_INPUT_NAMES = ["input_ids", "attention_mask"]
SETTINGS_FILE = "hfnlp_tokenizer.json"
# The key of SETTINGS_FILE that holds texts_fingerprint() of the texts the vocabulary was trained on.
TRAIN_TEXTS_KEY = "train_texts_fingerprint"
logger = logging.getLogger(__name__)
# More characters than any token of real text spans (a long word, an HTML tag stripped before a character).
MAX_CHARS_PER_TOKEN = 50
# Train lengths are measured on texts cut to token_budget(max(max_length, MEASURED_LENGTH)) characters: enough to see
# a p95 up to the longest max_length a data-aware default chooses (1,024 characters), at a bounded cost per row.
MEASURED_LENGTH = 1024
# What a key left out (None) means where nothing filled it from the data: a config built in code, or a task that
# does not fill it. A text-classification run fills them from its train split instead (see
# hfnlp.tasks.text_defaults.data_aware_defaults); these were the fixed defaults before.
FALLBACK_DEFAULTS: dict[str, Any] = {"level": "char", "vocab_size": 30000, "min_frequency": 1, "max_length": 128}
_HTML_TAG = Regex(r"<[^>]+>")


@dataclass
class TextTokenizerConfig:
    """The ``tokenizer`` section of a text-classification recipe.

    ``level``: ``char`` (one token per character, for Chinese), ``word`` (whitespace + punctuation rules),
    ``jieba`` (Chinese words segmented by jieba), ``bpe`` or ``wordpiece`` (sub-words).
    ``max_length`` is the tutorials' pad_size: longer texts are truncated; batches are padded only to
    their longest text.

    ``level``, ``vocab_size``, ``min_frequency`` and ``max_length`` are None when the recipe leaves them out: a
    text-classification run then fills them from its train split and writes the values into the run folder's
    ``recipe.yaml``; anywhere else :meth:`resolved` gives :data:`FALLBACK_DEFAULTS` for them.
    """

    level: Literal["char", "word", "jieba", "bpe", "wordpiece"] | None = None
    vocab_size: int | None = None
    min_frequency: int | None = None
    max_length: int | None = None
    lowercase: bool = True
    strip_html: bool = True
    punctuation: Literal["split", "drop", "keep"] = "split"
    pretrained_vectors: str | None = None
    pretrained_vectors_vocab: str | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "min_frequency", "max_length"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise RecipeError(f"tokenizer.{name} must be at least 1, got {getattr(self, name)}")

    def left_out(self) -> list[str]:
        """The keys of :data:`FALLBACK_DEFAULTS` the recipe left out (None), in that order."""
        return [name for name in FALLBACK_DEFAULTS if getattr(self, name) is None]

    def resolved(self) -> TextTokenizerConfig:
        """This config with :data:`FALLBACK_DEFAULTS` for the keys left out (itself if none is)."""
        left_out = self.left_out()
        return dataclasses.replace(self, **{name: FALLBACK_DEFAULTS[name] for name in left_out}) if left_out else self

    def vocabulary_settings(self) -> dict[str, object]:
        """The settings that decide the vocabulary (a saved tokenizer is reusable only if these match), keys left
        out counted as :meth:`resolved` fills them."""
        settings = dataclasses.asdict(self.resolved())
        for name in ("max_length", "pretrained_vectors", "pretrained_vectors_vocab"):
            settings.pop(name)
        return settings


def train_tokenizer(
    config: TextTokenizerConfig, texts: Iterable[str], num_texts: int | None = None
) -> PreTrainedTokenizerFast:
    """Train a tokenizer on ``texts`` (the train split only) and wrap it for transformers (keys left out: see
    :meth:`TextTokenizerConfig.resolved`)."""
    config = config.resolved()
    tokenizer = Tokenizer(_model_for(config.level))
    tokenizer.normalizer = text_normalizer(config)
    tokenizer.pre_tokenizer = jieba_pre_tokenizer() if config.level == "jieba" else _pre_tokenizer_for(config)
    if config.level == "char":
        # Imported here, as in char_pipeline: it imports datasets (1.2 s), which loading a saved tokenizer never needs.
        from hfnlp.tokenization.char_level import CharPipeline, word_level_vocabulary

        # WordLevelTrainer's vocabulary, from counts made by table lookup: 20 ms instead of 400 on THUCNews titles.
        counts = CharPipeline(strip_html=config.strip_html).token_counts(tokenizer, texts)
        vocab = word_level_vocabulary(
            counts, vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=SPECIAL_TOKENS
        )
        tokenizer.model = models.WordLevel(vocab, unk_token=UNK_TOKEN)
        tokenizer.add_special_tokens(SPECIAL_TOKENS)  # as Tokenizer.train adds the trainer's special tokens
    else:
        tokenizer.train_from_iterator(texts, _trainer_for(config), length=num_texts)
    if config.level != "jieba":
        return wrap_tokenizer(tokenizer, config.max_length)
    # transformers deep-copies the tokenizer, which a Python pre-tokenizer cannot survive; the class re-attaches it.
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    wrapped = wrap_tokenizer(tokenizer, config.max_length, cls=JiebaTokenizerFast)
    wrapped.backend_tokenizer.pre_tokenizer = jieba_pre_tokenizer()
    return wrapped


def cut_to_token_budget(texts: Iterable[str], max_length: int) -> list[str]:
    """``texts`` cut to ``max_length * MAX_CHARS_PER_TOKEN`` characters before tokenization.

    ``tokenizers`` encodes a whole text before truncating it, so one runaway row (a log dump, a whole book in a
    cell) would cost memory and time in proportion to its length: 20 texts of 900,000 characters took 2.6 GB
    and 25 s to truncate to 32 tokens. The cut keeps far more characters than ``max_length`` tokens span.
    """
    limit = token_budget(max_length)
    return [text[:limit] for text in texts]


def token_budget(max_length: int) -> int:
    """How many characters of a text :func:`cut_to_token_budget` keeps for ``max_length`` tokens."""
    return max_length * MAX_CHARS_PER_TOKEN


def measuring_budget(max_length: int) -> int:
    """How many characters of a train text its length is measured on (see :data:`MEASURED_LENGTH`)."""
    return token_budget(max(max_length, MEASURED_LENGTH))


def ids_encoder(
    tokenizer: PreTrainedTokenizerBase, max_length: int | None
) -> Callable[[list[str]], list[list[int]]] | None:
    """A function giving ``tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]`` straight from the
    Rust tokenizer (no offsets, no ``BatchEncoding``: 20-50% faster), or None for a tokenizer whose call returns more
    than ids and an all-ones attention mask (``token_type_ids``, or a slow tokenizer). ``max_length`` None: not
    truncated (``tokenizer(texts)["input_ids"]``)."""
    if not isinstance(tokenizer, PreTrainedTokenizerFast) or list(tokenizer.model_input_names) != MODEL_INPUT_NAMES:
        return None
    backend = tokenizer.backend_tokenizer

    def encode(texts: list[str]) -> list[list[int]]:
        # The settings the tokenizer's call puts on its backend (and leaves there) for these arguments.
        if max_length is None:
            backend.no_truncation()
        else:
            backend.enable_truncation(
                max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side
            )
        backend.no_padding()
        backend.encode_special_tokens = tokenizer.split_special_tokens
        return [encoding.ids for encoding in backend.encode_batch_fast(texts)]

    return encode


def padded_batch(ids: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """``input_ids`` padded on the right with ``pad_id`` to the longest, and their ``attention_mask``: what the
    tokenizer's call with ``padding=True, return_tensors="pt"`` returns for a right-padding tokenizer."""
    return padded_flat_batch(*flat_rows(ids), pad_id)


def flat_rows(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The int64 values of ``rows`` one row after the other, and the rows' lengths."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    return np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum())), lengths


def padded_flat_batch(values: np.ndarray, lengths: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """:func:`padded_batch` of rows given as their ids one after the other (``values``) and their ``lengths``."""
    input_ids, mask = padded_rows(values, lengths, pad_id)
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}


def padded_rows(values: np.ndarray, lengths: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows given as their ``values`` one after the other and their ``lengths``, right-padded with ``pad`` into an
    int64 array (rows, longest), and the mask of the real entries."""
    mask = np.arange(lengths.max(initial=0)) < lengths[:, None]
    rows = np.full(mask.shape, pad, dtype=np.int64)
    rows[mask] = values
    return rows, mask


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> np.ndarray:
    """How many tokens ``tokenizer`` makes of each of ``texts``, without truncation and without special tokens."""
    texts = list(texts)
    if not texts:
        return np.zeros(0, dtype=np.int64)
    if isinstance(tokenizer, PreTrainedTokenizerFast):
        backend = tokenizer.backend_tokenizer
        backend.no_truncation()  # as the tokenizer's own call would leave it for these arguments
        backend.no_padding()
        backend.encode_special_tokens = tokenizer.split_special_tokens
        encodings = backend.encode_batch_fast(texts, add_special_tokens=False)
        return np.fromiter(map(len, encodings), dtype=np.int64, count=len(texts))
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]  # untruncated on purpose
    return np.fromiter(map(len, ids), dtype=np.int64, count=len(texts))


def char_pipeline(tokenizer: PreTrainedTokenizerBase) -> CharPipeline | None:
    """The pipeline of ``tokenizer`` if it tokenizes exactly as a ``level: char`` tokenizer trained here (any
    vocabulary, HTML stripping and lower-casing), so that :class:`CharPipeline` can encode for it; else None."""
    if not isinstance(tokenizer, PreTrainedTokenizerFast) or isinstance(tokenizer, JiebaTokenizerFast):
        return None  # a Python pre-tokenizer (jieba) cannot even be serialized for the comparison below
    backend = tokenizer.backend_tokenizer
    if (
        not isinstance(backend.model, models.WordLevel)
        or backend.normalizer is None
        or backend.pre_tokenizer is None
        or backend.pre_tokenizer.__getstate__() != _pre_tokenizer_for(TextTokenizerConfig(level="char")).__getstate__()
        or tokenizer.truncation_side != "right"
        or (backend.post_processor is not None and backend.post_processor.num_special_tokens_to_add(False))
    ):
        return None
    from hfnlp.tokenization.char_level import CharPipeline

    for strip_html, lowercase in itertools.product((True, False), repeat=2):
        settings = TextTokenizerConfig(level="char", strip_html=strip_html, lowercase=lowercase)
        if backend.normalizer.__getstate__() == text_normalizer(settings).__getstate__():
            return CharPipeline(strip_html=strip_html)
    return None


def wrap_tokenizer(
    tokenizer: Tokenizer, max_length: int | None, cls: type = PreTrainedTokenizerFast
) -> PreTrainedTokenizerFast:
    """Wrap a trained ``tokenizers.Tokenizer`` with hfnlp's special tokens and right-side padding (``max_length``
    None: :data:`FALLBACK_DEFAULTS`')."""
    return cls(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=FALLBACK_DEFAULTS["max_length"] if max_length is None else max_length,
        padding_side="right",
        truncation_side="right",
        model_input_names=list(MODEL_INPUT_NAMES),
    )


def text_normalizer(config: TextTokenizerConfig) -> normalizers.Normalizer:
    """NFKC (full-width → half-width), optional HTML-tag stripping (IMDb's ``<br />``) and lower-casing."""
    steps: list[normalizers.Normalizer] = []
    if config.strip_html:
        steps.append(normalizers.Replace(_HTML_TAG, " "))
    steps.append(normalizers.NFKC())
    if config.lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _model_for(level: str) -> models.Model:
    if level == "bpe":
        return models.BPE(unk_token=UNK_TOKEN)
    if level == "wordpiece":
        return models.WordPiece(unk_token=UNK_TOKEN)
    return models.WordLevel(unk_token=UNK_TOKEN)


def _pre_tokenizer_for(config: TextTokenizerConfig) -> pre_tokenizers.PreTokenizer:
    config = config.resolved()
    if config.level == "char":
        return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")])
    punctuation = {
        "split": [pre_tokenizers.Punctuation("isolated")],
        "drop": [pre_tokenizers.Punctuation("removed")],
        "keep": [],
    }[config.punctuation]
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), *punctuation])


def _trainer_for(config: TextTokenizerConfig) -> trainers.Trainer:
    config = config.resolved()
    kwargs = {
        "vocab_size": config.vocab_size,
        "min_frequency": config.min_frequency,
        "special_tokens": SPECIAL_TOKENS,
        "show_progress": False,
    }
    if config.level == "bpe":
        return trainers.BpeTrainer(**kwargs)
    if config.level == "wordpiece":
        return trainers.WordPieceTrainer(**kwargs)
    return trainers.WordLevelTrainer(**kwargs)


def texts_fingerprint(texts: Iterable[str]) -> str:
    """A fingerprint of training texts, in order: their count and a BLAKE2b digest of them joined (about 5 ms for
    THUCNews' 33,590 titles). Two fingerprints are equal only if the texts are (barring texts with NUL bytes)."""
    # A datasets Column sliced gives all its values at once: 10 ms for THUCNews' titles instead of 480 iterated. Only
    # data already read through datasets can be one (this module does not import it: prediction never needs it).
    datasets = sys.modules.get("datasets")
    texts = texts[:] if datasets is not None and isinstance(texts, datasets.Column) else list(texts)
    digest = hashlib.blake2b("\0".join(texts).encode("utf-8", "surrogatepass"), digest_size=16)
    return f"{len(texts)}:{digest.hexdigest()}"


def save_tokenizer(
    tokenizer: PreTrainedTokenizerBase,
    config: TextTokenizerConfig,
    folder: str | Path,
    train_texts_fingerprint: str | None = None,
) -> None:
    """Save the tokenizer, the vocabulary settings it was trained with and the :func:`texts_fingerprint` of the
    texts it was trained on."""
    folder = Path(folder)
    tokenizer.save_pretrained(folder)
    settings = config.vocabulary_settings()
    if train_texts_fingerprint is not None:
        settings[TRAIN_TEXTS_KEY] = train_texts_fingerprint
    (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))


def load_saved_tokenizer(
    folder: str | Path, config: TextTokenizerConfig | None = None, train_texts_fingerprint: str | None = None
) -> PreTrainedTokenizerBase:
    """Load a tokenizer saved by :func:`save_tokenizer`, checked by :func:`check_saved_tokenizer`."""
    folder = Path(folder)
    check_saved_tokenizer(folder, config, train_texts_fingerprint)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    if tokenizer_config.get("tokenizer_class") == JiebaTokenizerFast.__name__:
        tokenizer = JiebaTokenizerFast.from_pretrained(folder)  # hfnlp's own class: no remote code needed
    else:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    if config is not None:  # a text or a caption tokenizer's config
        tokenizer.model_max_length = FALLBACK_DEFAULTS["max_length"] if config.max_length is None else config.max_length
    return tokenizer


def check_saved_tokenizer(
    folder: Path, config: TextTokenizerConfig | None = None, train_texts_fingerprint: str | None = None
) -> None:
    """Refuse a tokenizer saved by :func:`save_tokenizer` if ``config`` asks for another vocabulary, or if
    ``train_texts_fingerprint`` says the training texts are not the ones its vocabulary was built from."""
    saved = json.loads((folder / SETTINGS_FILE).read_text()) if (folder / SETTINGS_FILE).exists() else None
    if train_texts_fingerprint is not None and saved is not None:
        _check_train_texts(folder, saved.get(TRAIN_TEXTS_KEY), train_texts_fingerprint)
    if config is not None:
        saved = {key: value for key, value in (saved or {}).items() if key != TRAIN_TEXTS_KEY} or None
        if saved is not None and saved != config.vocabulary_settings():
            changed = sorted(
                k
                for k in saved.keys() | config.vocabulary_settings().keys()
                if saved.get(k) != config.vocabulary_settings().get(k)
            )
            raise DataError(
                f"{folder} holds a tokenizer trained with other settings ({', '.join(changed)} differ); "
                "a model only works with the vocabulary it was trained on: use a new output_dir to retrain"
            )


def _check_train_texts(folder: Path, saved: str | None, current: str) -> None:
    if saved is None:  # saved before hfnlp recorded training texts: nothing to compare with
        logger.warning("%s does not record the texts its vocabulary was trained on; reusing it unchecked", folder)
    elif saved != current:
        raise DataError(
            f"{folder} holds a tokenizer whose vocabulary was trained on other training data ({saved.split(':')[0]} "
            f"train texts then, {current.split(':')[0]} now, or the same number with other contents: the data "
            "file, its rows, the seed or the split ratios changed); a model only works with the data its vocabulary "
            "was built from, so a resumed run must read the same training data: use a new output_dir to train on "
            "this data"
        )
