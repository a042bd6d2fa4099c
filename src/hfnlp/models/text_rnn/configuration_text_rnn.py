"""TextRNN configuration.

Self-contained on purpose: transformers copies this file and ``configuration_text_classifier.py`` next to the weights
for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only transformers and huggingface_hub.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers.utils.type_validators import positive_int_field

from .configuration_text_classifier import TextClassifierConfig


@strict(accept_kwargs=True)
class TextRNNConfig(TextClassifierConfig):
    r"""Configuration of :class:`TextRNNForSequenceClassification`: embeddings, a recurrent encoder, pooling
    over time and a linear classifier. The fields every text classifier has (``vocab_size``, ``embedding_dim``,
    ``pad_token_id``, ``dropout``, ``freeze_embeddings``, ``initializer``, ``initialize_embeddings``) are
    described in :class:`TextClassifierConfig`; ``dropout`` also applies between stacked recurrent layers.

    Args:
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

    cell: Literal["rnn", "gru", "lstm"] = "lstm"
    hidden_size: int = positive_int_field(default=128)
    num_layers: int = positive_int_field(default=2)
    bidirectional: bool = True
    pooling: Literal["last", "first_last", "mean", "max", "attention"] = "last"
    attention_size: int = positive_int_field(default=64)


__all__ = ["TextRNNConfig"]
