"""Which characters Unicode normalization can join to their neighbour: what makes a character *local* for the
vectorised char-level tokenizer (:mod:`hfnlp.tokenization.char_level`)."""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

# Hangul vowel (V) and trailing consonant (T) jamo compose algorithmically (L + V, LV + T), not through
# UnicodeData's decomposition mappings.
_HANGUL_SECONDS = (range(0x1161, 0x1176), range(0x11A8, 0x11C3))
_HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)
_SURROGATES = range(0xD800, 0xE000)
_UNKNOWN, _YES, _NO = 0, 1, 2
_STARTS_ALONE = np.full(0x110000, _UNKNOWN, dtype=np.int8)  # memo of starts_alone, per code point


def starts_alone(codepoints: np.ndarray) -> np.ndarray:
    """Whether the NFKD decomposition of each code point (assigned in Python's Unicode data) starts with a starter
    that composes with nothing before it. Memoised per code point, as the Unicode data is fixed."""
    known = _STARTS_ALONE[codepoints]
    if (known == _UNKNOWN).any():
        seconds = composition_seconds()
        for codepoint in codepoints[known == _UNKNOWN].tolist():
            char = chr(codepoint)
            start = unicodedata.normalize("NFKD", char)[0]
            alone = unicodedata.category(char) != "Cn" and unicodedata.combining(start) == 0 and start not in seconds
            _STARTS_ALONE[codepoint] = _YES if alone else _NO
        known = _STARTS_ALONE[codepoints]
    return known == _YES


@functools.cache
def composition_seconds() -> frozenset[str]:
    """Characters that NFC composes with a preceding one: the second of each canonical two-character decomposition
    (of a character not excluded from composition), and the Hangul V and T jamo. Computed once per process (~15 ms)
    from Python's Unicode data."""
    seconds = {chr(codepoint) for block in _HANGUL_SECONDS for codepoint in block}

    def scan(text: str) -> None:
        # Halving skips the ranges already in NFD (most of Unicode) in a few C calls instead of a million lookups.
        if unicodedata.is_normalized("NFD", text):
            return
        if len(text) > 64:
            scan(text[: len(text) // 2])
            scan(text[len(text) // 2 :])
            return
        for char in text:
            decomposition = unicodedata.decomposition(char).split()
            if len(decomposition) == 2 and not decomposition[0].startswith("<"):
                first, second = (chr(int(code, 16)) for code in decomposition)
                if unicodedata.normalize("NFC", first + second) == char:
                    seconds.add(second)

    for start in range(0, 0x110000, 4096):
        block = np.arange(start, start + 4096, dtype=np.uint32)
        # Surrogates cannot be decoded (nothing decomposes there); Hangul syllables decompose algorithmically.
        for skipped in (_SURROGATES, _HANGUL_SYLLABLES):
            block[max(skipped.start - start, 0) : max(skipped.stop - start, 0)] = 0
        scan(block.tobytes().decode("utf-32-le"))
    return frozenset(seconds)
