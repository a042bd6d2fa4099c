"""The demo tests reuse the explanation tests' tiny trained models."""

from tests.explain.conftest import trained_folder, word_tokenizer  # noqa: F401  (fixtures)
