"""TextCNN configuration.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code``
loading, where hfnlp is not installed, so it may import nothing but transformers.
"""

from __future__ import annotations

from transformers import PretrainedConfig

INITIALIZERS = ("xavier", "kaiming", "normal", "default")


class TextCNNConfig(PretrainedConfig):
    r"""Configuration of :class:`TextCNNForSequenceClassification` (Kim 2014): embeddings, parallel 1-D
    convolutions of several widths, ReLU, max-over-time pooling, dropout and a linear classifier.

    Labels are set with ``num_labels`` or ``id2label`` / ``label2id``, as for any transformers config.

    Args:
        vocab_size: Number of rows of the embedding matrix.
        embedding_dim: Size of each token embedding.
        pad_token_id: Id of the padding token; its embedding row is zero.
        dropout: Dropout before the classifier.
        freeze_embeddings: Keep the embedding matrix fixed during training (``requires_grad=False``).
        initializer: Weight initialization scheme applied by the trainer to a new model: ``"xavier"``,
            ``"kaiming"``, ``"normal"`` (std 0.02) or ``"default"`` (PyTorch's own).
        initialize_embeddings: Whether ``initializer`` also re-initializes the embedding matrix.
        filter_sizes: Convolution widths in tokens, one convolution per width.
        num_filters: Output channels of each convolution.
    """

    model_type = "hfnlp_text_cnn"

    vocab_size: int = 30000
    embedding_dim: int = 300
    pad_token_id: int = 0
    dropout: float = 0.5
    freeze_embeddings: bool = False
    initializer: str = "xavier"
    initialize_embeddings: bool = False
    filter_sizes: list[int] | tuple[int, ...] = (2, 3, 4)
    num_filters: int = 256

    def __post_init__(self, **kwargs) -> None:
        _check_choice("initializer", self.initializer, INITIALIZERS)
        for name in ("vocab_size", "embedding_dim", "num_filters"):
            _check_positive_int(name, getattr(self, name))
        if not isinstance(self.filter_sizes, list | tuple) or not self.filter_sizes:
            raise ValueError(f"filter_sizes must be a non-empty list of widths, got {self.filter_sizes!r}")
        for size in self.filter_sizes:
            _check_positive_int("each of filter_sizes", size)
        # a list, as it comes back from config.json, so that saved and loaded configs compare equal
        self.filter_sizes = list(self.filter_sizes)
        if type(self.pad_token_id) is not int or not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id must be an int in [0, vocab_size={self.vocab_size}), not {self.pad_token_id!r}"
            )
        if type(self.dropout) not in (int, float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        super().__post_init__(**kwargs)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def _check_positive_int(name: str, value: object) -> None:
    # type() rather than isinstance(): True is an int too
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


__all__ = ["TextCNNConfig"]
