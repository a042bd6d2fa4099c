"""Vectorised char-level tokenization: the ids the ``tokenizers`` pipeline gives, at NumPy speed.

hfnlp's ``level: char`` pipeline (see :mod:`hfnlp.tokenization.text`) normalizes with an optional HTML-tag
``Replace``, NFKC and an optional ``Lowercase``, splits on white space, isolates every character and looks each one
up in a ``WordLevel`` vocabulary. For most characters the tokens of a text are the tokens of its characters taken
one by one, put end to end, so texts can be tokenized by table lookup: all texts are joined into one array of code
points, each *distinct* character is tokenized once by the real pipeline, and a table indexed by code point gives
the ids of every character at once.

Only *local* characters, whose tokens cannot depend on their neighbours, go through the table (see
:func:`_local_tokens` for the proof and the checks). A text with any other character (a combining mark, a Hangul
vowel jamo, ``<`` when HTML tags are stripped) or with an added token written out (``[PAD]``) is tokenized by the
real tokenizer, so the ids are always the ones ``tokenizers`` gives. That is 21 of 53,590 THUCNews titles and 3% of
the waimai reviews (mostly for ``…``, which gives three tokens: characters giving several tokens could be made local
too, at the cost of a ragged table).
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Column, Dataset, DatasetDict, Features, List, Value
from datasets.fingerprint import generate_random_fingerprint
from datasets.table import InMemoryTable
from tokenizers import PreTokenizedString, Tokenizer
from transformers import PreTrainedTokenizerFast

from hfnlp.tokenization.unicode_composition import starts_alone

Texts = Iterable[str] | pa.Array | pa.ChunkedArray
# Table values besides token ids: the character gives no token (white space), or it is not local.
_NO_TOKEN, _NOT_LOCAL = -1, -2
Fast = PreTrainedTokenizerFast
Rows = tuple[range, int] | None  # texts to measure (by row) and the characters each is cut to
Split = tuple[str, int] | None  # a split to measure and the characters each text is cut to
_ENCODED_FEATURES = {"input_ids": List(Value("int32")), "attention_mask": List(Value("int8")), "length": Value("int64")}


class CharEncoding(NamedTuple):
    """Token ids of many texts as one flat array: text ``i`` has ``ids[offsets[i]:offsets[i + 1]]``; ``untruncated``:
    the token counts before truncation of the texts :meth:`CharPipeline.encode` was asked to ``measure``."""

    offsets: np.ndarray  # int64, one more than there are texts
    ids: np.ndarray  # int32
    untruncated: np.ndarray | None = None  # int64


@dataclass(frozen=True)
class CharPipeline:
    """A char-level ``tokenizers`` pipeline: ``Replace(<[^>]+>, " ")`` if ``strip_html``, NFKC, optionally
    ``Lowercase``; ``WhitespaceSplit`` then ``Split(Regex("."), "isolated")``; a ``WordLevel`` model.

    Get one from :func:`hfnlp.tokenization.text.char_pipeline`, which checks that a tokenizer has exactly this
    pipeline: the shortcuts here hold for it and for nothing else.
    """

    strip_html: bool

    def token_counts(self, tokenizer: Tokenizer, texts: Texts) -> Counter[str]:
        """How often each token occurs in ``texts``: what ``trainers.WordLevelTrainer`` counts before it picks the
        vocabulary. Only the normalizer and pre-tokenizer of ``tokenizer`` are used (its model may be untrained)."""
        rows = _Rows.of(texts)
        tokens = _local_tokens(tokenizer, rows.distinct, strip_html=self.strip_html)
        local = np.array([token is not None for token in tokens], dtype=bool)
        contextual = rows.rows_at(np.flatnonzero(~rows.lookup(local, fill=False)))
        char_counts = rows.counts
        if len(contextual):  # their characters are counted from the real pre-tokenization below
            char_counts = char_counts - np.bincount(rows.codepoints_of(contextual), minlength=len(char_counts))
        counts: Counter[str] = Counter()
        for token, count in zip(tokens, char_counts[rows.distinct].tolist(), strict=True):
            if token and count:
                counts[token] += count
        normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
        for text in rows.texts(contextual):
            counts.update(token for token, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
        return counts

    def encode(
        self, tokenizer: Fast, texts: Texts, *, max_length: int, max_chars: int, measure: Rows = None
    ) -> CharEncoding:
        """``tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]`` for ``texts`` cut to their
        first ``max_chars`` characters (``cut_to_token_budget``), as a :class:`CharEncoding`. ``measure=(rows,
        chars)``: also count the tokens of the texts at ``rows`` cut to ``chars`` characters, untruncated."""
        rows = _Rows.of(texts)
        backend = tokenizer.backend_tokenizer
        tokens = _local_tokens(backend, rows.distinct, strip_html=self.strip_html)
        char_ids = rows.lookup(_token_ids(tokens, backend), fill=_NOT_LOCAL)
        starts, stops = rows.offsets[:-1], rows.offsets[1:]
        ends = np.minimum(stops, starts + max_chars)
        not_local = np.union1d(np.flatnonzero(char_ids == _NOT_LOCAL), rows.find(_added_tokens(backend)))
        contextual = rows.rows_at(not_local, ends)
        local = np.ones(len(starts), dtype=bool)
        local[contextual] = False

        # Each character of a local row gives one token or none: the row's ids are its characters' ids without the
        # no-token ones, cut to max_length.
        gives_token = char_ids >= 0
        ids = char_ids[gives_token]
        tokens_before = np.zeros(len(char_ids) + 1, dtype=np.int32 if len(char_ids) < 2**31 else np.int64)
        np.cumsum(gives_token, out=tokens_before[1:])
        first = tokens_before[starts]
        untruncated = None if measure is None else _untruncated(tokenizer, rows, tokens_before, not_local, *measure)
        lengths = np.where(local, np.minimum(tokens_before[ends] - first, max_length), 0)
        dropped = tokens_before[stops] - first - lengths  # past max_length or max_chars, or in a contextual row
        if dropped.any():
            keep = np.ones(len(ids), dtype=bool)
            before = np.cumsum(dropped) - dropped
            keep[np.arange(before[-1] + dropped[-1]) + np.repeat(first + lengths - before, dropped)] = False
            ids = ids[keep]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(contextual):
            bounds = zip(starts[contextual].tolist(), ends[contextual].tolist(), strict=True)
            encoded = tokenizer([rows.text[start:end] for start, end in bounds], truncation=True, max_length=max_length)
            lengths[contextual] = [len(row) for row in encoded["input_ids"]]
            np.cumsum(lengths, out=offsets[1:])
            from_table = np.repeat(local, lengths)
            merged = np.empty(offsets[-1], dtype=np.int32)
            merged[from_table] = ids
            merged[~from_table] = np.fromiter((i for row in encoded["input_ids"] for i in row), dtype=np.int32)
            ids = merged
        return CharEncoding(offsets, ids, untruncated)

    def encode_splits(
        self, splits: DatasetDict, tokenizer: Fast, *, max_length: int, max_chars: int, measure: Split = None
    ) -> tuple[DatasetDict, np.ndarray | None]:
        """Each split without its ``text`` column, with ``input_ids``, ``attention_mask`` and ``length`` appended: the
        columns and types ``DatasetDict.map`` with the tokenizer gives, built directly as Arrow arrays. All splits are
        encoded together, so the table of characters is made once. ``measure=(split, chars)``: also the untruncated
        token counts of that split's texts (see :meth:`encode`), else None."""
        tables = {name: _arrow_table(split) for name, split in splits.items()}
        texts = [table.column("text").cast(pa.large_string()) for table in tables.values()]
        bounds = dict(zip(tables, itertools.pairwise(np.cumsum([0, *map(len, tables.values())]).tolist()), strict=True))
        encoding = self.encode(
            tokenizer,
            pa.chunked_array([chunk for column in texts for chunk in column.chunks], type=pa.large_string()),
            max_length=max_length,
            max_chars=max_chars,
            measure=None if measure is None else (range(*bounds[measure[0]]), measure[1]),
        )
        encoded = {}
        for (name, table), split in zip(tables.items(), splits.values(), strict=True):
            offsets = encoding.offsets[bounds[name][0] : bounds[name][1] + 1]
            encoded[name] = _with_encoding(split, table, CharEncoding(offsets, encoding.ids))
        return DatasetDict(encoded), encoding.untruncated


def word_level_vocabulary(
    counts: Mapping[str, int], *, vocab_size: int, min_frequency: int, special_tokens: Sequence[str]
) -> dict[str, int]:
    """The vocabulary ``trainers.WordLevelTrainer`` picks from token ``counts`` (tokenizers 0.21-0.23): the special
    tokens, then the tokens counted at least ``min_frequency`` times by count (ties in code point order), cut to
    ``vocab_size`` entries in all. A special token also counted keeps its later id, as in the Rust hash map."""
    ordered = sorted(counts.items())
    ordered.sort(key=operator.itemgetter(1), reverse=True)  # stable: equal counts stay in code point order
    words = [*special_tokens, *(token for token, count in ordered if count >= min_frequency)][:vocab_size]
    return {token: index for index, token in enumerate(words)}


def _arrow_table(split: Dataset) -> pa.Table:
    """The rows of ``split`` as an Arrow table, its indices mapping (``shuffle``, ``train_test_split``) applied."""
    # datasets applies a mapping row by row into one-row chunks (3 µs a row, and slow to use after); Arrow's take on
    # the backing table does it at once. The mapping is private: if it moved, the row count tells, and the public
    # way is taken.
    indices = getattr(split, "_indices", None)
    table = split.data.table if indices is None else split.data.table.take(indices.column(0))
    return table if len(table) == len(split) else split.with_format("arrow")[:].combine_chunks()


def _with_encoding(split: Dataset, table: pa.Table, encoding: CharEncoding) -> Dataset:
    """``split`` (as the Arrow ``table``) with its ``text`` column replaced by the encoded columns.

    ``encoding.offsets`` may start past 0: this split's rows are a slice of an encoding of several splits."""
    start, stop = int(encoding.offsets[0]), int(encoding.offsets[-1])
    if stop - start > np.iinfo(np.int32).max:
        raise ValueError(f"{stop - start} tokens in one split are more than an Arrow list holds")
    offsets = pa.array((encoding.offsets - start).astype(np.int32))
    ones = np.ones(stop - start, dtype=np.int8)
    columns = {
        "input_ids": pa.ListArray.from_arrays(offsets, pa.array(encoding.ids[start:stop])),
        "attention_mask": pa.ListArray.from_arrays(offsets, pa.array(ones)),
        "length": pa.array(np.diff(encoding.offsets)),
    }
    table = table.drop_columns(["text"]).replace_schema_metadata(None)  # the metadata still lists "text"
    for name, column in columns.items():
        table = table.append_column(name, column)
    info = split.info.copy()
    info.features = Features({name: feature for name, feature in split.features.items() if name != "text"})
    info.features.update(_ENCODED_FEATURES)
    # An in-memory table is never cached on disk, so a random fingerprint (as datasets gives what it cannot hash)
    # loses nothing and saves hashing the whole table (7 ms a split).
    return Dataset(InMemoryTable(table), info=info, split=split.split, fingerprint=generate_random_fingerprint())


@dataclass(frozen=True)
class _Rows:
    """Texts joined into one string and its code points; text ``i`` is ``text[offsets[i]:offsets[i + 1]]``."""

    text: str
    codepoints: np.ndarray  # intp, the index type: bincount and table lookups use it without a converted copy
    offsets: np.ndarray  # int64

    @classmethod
    def of(cls, texts: Texts) -> _Rows:
        if isinstance(texts, Column) and isinstance(texts.source, Dataset) and texts.source.format["type"] is None:
            texts = _arrow_table(texts.source).column(texts.column_name)  # iterating a Column costs 7 µs a row
        if isinstance(texts, pa.ChunkedArray | pa.Array):
            return cls._of_arrow(texts)
        texts = texts[:] if isinstance(texts, Column) else texts if isinstance(texts, list) else list(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        return cls._of_text("".join(texts), lengths)

    @classmethod
    def _of_arrow(cls, texts: pa.Array | pa.ChunkedArray) -> _Rows:
        array = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        if not pa.types.is_large_string(array.type):
            array = array.cast(pa.large_string())
        if array.null_count:
            raise ValueError(f"{array.null_count} text(s) are missing (null)")
        lengths = pc.utf8_length(array).to_numpy(zero_copy_only=False)
        _, value_offsets, data = array.buffers()
        if data is None or not len(array):
            return cls._of_text("", lengths)
        bounds = np.frombuffer(value_offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
        # One decode of the UTF-8 buffer instead of a Python string per row.
        return cls._of_text(str(memoryview(data)[bounds[0] : bounds[-1]], "utf-8"), lengths)

    @classmethod
    def _of_text(cls, text: str, lengths: np.ndarray) -> _Rows:
        codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.intp)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] != len(codepoints):
            raise AssertionError("the text lengths do not add up to the joined text")
        return cls(text, codepoints, offsets)

    @functools.cached_property
    def counts(self) -> np.ndarray:
        """Occurrences of each code point, indexed by code point."""
        return np.bincount(self.codepoints)

    @functools.cached_property
    def distinct(self) -> np.ndarray:
        """The distinct code points, ascending."""
        return np.flatnonzero(self.counts)

    def lookup(self, values: np.ndarray, *, fill: object) -> np.ndarray:
        """``values`` (one per distinct code point) for every code point of the texts."""
        table = np.full(len(self.counts), fill, dtype=values.dtype)
        table[self.distinct] = values
        return table[self.codepoints]

    def rows_at(self, positions: np.ndarray, ends: np.ndarray | None = None) -> np.ndarray:
        """The rows holding the characters at ``positions`` (those before ``ends``, if given), ascending."""
        rows = np.searchsorted(self.offsets, positions, side="right") - 1
        if ends is not None:
            rows = rows[positions < ends[rows]]
        return np.unique(rows)

    def find(self, strings: Iterable[str]) -> np.ndarray:
        """Where each of ``strings`` occurs in the joined text."""
        positions = []
        for string in strings:
            position = self.text.find(string)
            while position >= 0:
                positions.append(position)
                position = self.text.find(string, position + 1)
        return np.array(positions, dtype=np.int64)

    def codepoints_of(self, rows: np.ndarray) -> np.ndarray:
        return np.concatenate([self.codepoints[self.offsets[row] : self.offsets[row + 1]] for row in rows])

    def texts(self, rows: np.ndarray) -> list[str]:
        return [self.text[self.offsets[row] : self.offsets[row + 1]] for row in rows]


def _local_tokens(tokenizer: Tokenizer, codepoints: np.ndarray, *, strip_html: bool) -> list[str | None]:
    """For each code point: its one token, ``""`` if it gives none, ``None`` if it is not local.

    Besides the HTML ``Replace`` (its matches start with ``<``), NFKC is the only step that looks at neighbours:
    ``Lowercase`` maps each character on its own, ``WhitespaceSplit`` looks at one character, and so does ``.``
    (Oniguruma's ``.`` misses only line terminators, which are white space, split off before). NFKC decomposes each
    character on its own, then reorders runs of combining marks and composes a starter with the characters after
    it. If the decomposition of a character starts with a starter (combining class 0) that is not the second
    character of any composition, nothing is reordered across its start nor composed over it: its characters
    compose among themselves only, as when it stands alone. Characters unassigned in Python's Unicode data are
    never local (a newer Unicode may give them compositions).

    The real pipeline then tokenizes all the remaining characters at once, with offsets telling which token comes
    from which character; a character is local if it gives one token or none. ``codepoints`` must be ascending.
    """
    candidates = codepoints[starts_alone(codepoints) & ~(strip_html & (codepoints == ord("<")))]
    probe = PreTokenizedString(candidates.astype(np.uint32).tobytes().decode("utf-32-le"))
    probe.normalize(tokenizer.normalizer.normalize)
    tokenizer.pre_tokenizer.pre_tokenize(probe)
    splits = probe.get_splits(offset_referential="original", offset_type="char")
    starts = np.fromiter((start for _, (start, _), _ in splits), dtype=np.int64, count=len(splits))
    ends = np.fromiter((end for _, (_, end), _ in splits), dtype=np.int64, count=len(splits))
    local = np.bincount(starts, minlength=len(candidates)) <= 1
    for start, end in zip(starts[ends - starts != 1].tolist(), ends[ends - starts != 1].tolist(), strict=True):
        local[start : max(end, start + 1)] = False  # a token across characters (or from none)
    split_of = np.full(len(candidates), -1, dtype=np.int64)
    split_of[starts] = np.arange(len(splits))
    tokens: list[str | None] = [None] * len(codepoints)
    places = np.searchsorted(codepoints, candidates[local]).tolist()
    for place, split in zip(places, split_of[local].tolist(), strict=True):
        tokens[place] = splits[split][0] if split >= 0 else ""
    return tokens


def _untruncated(tokenizer: Fast, rows: _Rows, tokens_before: np.ndarray, not_local: np.ndarray, at: range, chars: int):
    """The token counts (int64) of the texts at rows ``at`` cut to ``chars`` characters, untruncated: the table's
    from ``tokens_before`` each character, the tokenizer's where ``not_local`` (what the table cannot encode) holds a
    position before the cut."""
    starts = rows.offsets[at.start : at.stop]
    ends = np.minimum(rows.offsets[at.start + 1 : at.stop + 1], starts + chars)
    counts = (tokens_before[ends] - tokens_before[starts]).astype(np.int64)
    inside = not_local[(not_local >= rows.offsets[at.start]) & (not_local < rows.offsets[at.stop])]
    row_of = np.searchsorted(starts, inside, side="right") - 1
    contextual = np.unique(row_of[inside < ends[row_of]])
    if len(contextual):
        bounds = zip(starts[contextual].tolist(), ends[contextual].tolist(), strict=True)
        texts = [rows.text[start:end] for start, end in bounds]
        # verbose=False: counting untruncated lengths is the point, the "longer than the maximum" warning misleads
        ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        counts[contextual] = [len(row) for row in ids]
    return counts


def _token_ids(tokens: list[str | None], tokenizer: Tokenizer) -> np.ndarray:
    """Ids of :func:`_local_tokens`' tokens, looked up as the ``WordLevel`` model does."""
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    unk_id = vocab.get(tokenizer.model.unk_token)
    ids = np.empty(len(tokens), dtype=np.int32)
    for index, token in enumerate(tokens):
        token_id = vocab.get(token, unk_id) if token else None
        if token is None or (token and token_id is None):
            # Not local; or unknown without [UNK] in the vocabulary, an error the real tokenizer should raise.
            ids[index] = _NOT_LOCAL
        else:
            ids[index] = _NO_TOKEN if token_id is None else token_id
    return ids


def _added_tokens(tokenizer: Tokenizer) -> list[str]:
    """Added tokens (``[PAD]``, ``[UNK]``) match in the raw text, before normalization: a row with one written out
    is contextual. A normalized added token would match after normalization, which the table cannot see."""
    added = list(tokenizer.get_added_tokens_decoder().values())
    if any(token.normalized for token in added):
        raise ValueError("vectorised char-level encoding cannot handle normalized added tokens")
    return [token.content for token in added]
