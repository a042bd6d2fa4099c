"""What every hfnlp text classifier's configuration holds: vocabulary, embeddings, dropout and initialisation.

One real file, linked into each text family's folder (``ln -s ../_shared/...``), so that every family folder stays
self-contained: transformers copies this file (its content) next to the weights for ``trust_remote_code`` loading,
where hfnlp is not installed, so it may import nothing but transformers and huggingface_hub.

Field checks are declarative (``@strict`` type checks, ``Literal`` choices, ``transformers`` field validators); no
``from __future__ import annotations`` here or in the family configurations, as ``@strict`` skips string annotations.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PretrainedConfig
from transformers.utils.type_validators import interval, positive_int_field


@strict(accept_kwargs=True)
class TextClassifierConfig(PretrainedConfig):
    r"""Base of the text classifier configurations (TextRNN, TextCNN, fastText): the fields they share.

    Labels are set with ``num_labels`` or ``id2label`` / ``label2id``, as for any transformers config.

    Args:
        vocab_size: Number of rows of the token embedding matrix.
        embedding_dim: Size of each token embedding.
        pad_token_id: Id of the padding token, below ``vocab_size``; its embedding row is zero.
        dropout: Dropout probability, in [0, 1).
        freeze_embeddings: Keep the token embedding matrix fixed during training (``requires_grad=False``).
        initializer: Weight initialisation of a new model: ``"xavier"`` (Glorot uniform), ``"kaiming"`` (He normal,
            ReLU gain), ``"normal"`` (std 0.02) on every matrix, biases zero; or ``"default"`` (PyTorch's own).
            Weights loaded by ``from_pretrained`` are never re-initialised.
        initialize_embeddings: Whether ``initializer`` also applies to the embedding matrices (padding row zero).
    """

    vocab_size: int = positive_int_field(default=30000)
    embedding_dim: int = positive_int_field(default=300)
    pad_token_id: int = interval(min=0)(default=0)
    # int too: a recipe's `dropout: 0` is an int in YAML
    dropout: float | int = interval(min=0, max=1, exclude_max=True)(default=0.5)
    freeze_embeddings: bool = False
    initializer: Literal["xavier", "kaiming", "normal", "default"] = "xavier"
    initialize_embeddings: bool = False

    def validate_pad_token_id(self) -> None:
        """The padding token must have a row of the embedding matrix."""
        if self.pad_token_id >= self.vocab_size:
            raise ValueError(f"pad_token_id must be below vocab_size={self.vocab_size}, got {self.pad_token_id}")


__all__ = ["TextClassifierConfig"]
