"""TextRNN configuration.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code``
loading, where hfnlp is not installed, so it may import nothing but transformers.
"""

from __future__ import annotations

from transformers import PretrainedConfig

CELLS = ("rnn", "gru", "lstm")
POOLINGS = ("last", "first_last", "mean", "max", "attention")
INITIALIZERS = ("xavier", "kaiming", "normal", "default")


class TextRNNConfig(PretrainedConfig):
    r"""Configuration of :class:`TextRNNForSequenceClassification`: embeddings, a recurrent encoder, pooling
    over time and a linear classifier.

    Labels are set with ``num_labels`` or ``id2label`` / ``label2id``, as for any transformers config.

    Args:
        vocab_size: Number of rows of the embedding matrix.
        embedding_dim: Size of each token embedding.
        pad_token_id: Id of the padding token; its embedding row is zero.
        dropout: Dropout before the classifier, and between stacked recurrent layers.
        freeze_embeddings: Keep the embedding matrix fixed during training (``requires_grad=False``).
        initializer: Weight initialization scheme applied by the trainer to a new model: ``"xavier"``,
            ``"kaiming"``, ``"normal"`` (std 0.02) or ``"default"`` (PyTorch's own).
        initialize_embeddings: Whether ``initializer`` also re-initializes the embedding matrix.
        cell: Recurrent cell: ``"rnn"``, ``"gru"`` or ``"lstm"``.
        hidden_size: Hidden size of the recurrent cell (per direction).
        num_layers: Number of stacked recurrent layers.
        bidirectional: Run a second recurrence right to left and concatenate both directions.
        pooling: How the sequence of outputs becomes one vector: ``"last"`` (final hidden state of each
            direction), ``"first_last"`` (outputs at the first and the last real token, concatenated),
            ``"mean"``, ``"max"`` or ``"attention"`` (additive attention over time).
        attention_size: Size of the additive attention's hidden layer (``pooling="attention"`` only).
    """

    model_type = "hfnlp_text_rnn"

    vocab_size: int = 30000
    embedding_dim: int = 300
    pad_token_id: int = 0
    dropout: float = 0.5
    freeze_embeddings: bool = False
    initializer: str = "xavier"
    initialize_embeddings: bool = False
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    bidirectional: bool = True
    pooling: str = "last"
    attention_size: int = 64

    def __post_init__(self, **kwargs) -> None:
        _check_choice("cell", self.cell, CELLS)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("initializer", self.initializer, INITIALIZERS)
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers", "attention_size"):
            _check_positive_int(name, getattr(self, name))
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


__all__ = ["TextRNNConfig"]
