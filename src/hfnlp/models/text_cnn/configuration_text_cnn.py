"""TextCNN configuration.

Self-contained on purpose: transformers copies this file and ``configuration_text_classifier.py`` next to the weights
for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only transformers and huggingface_hub.
"""

from huggingface_hub.dataclasses import strict
from transformers.utils.type_validators import positive_int_field

from .configuration_text_classifier import TextClassifierConfig


@strict(accept_kwargs=True)
class TextCNNConfig(TextClassifierConfig):
    r"""Configuration of :class:`TextCNNForSequenceClassification` (Kim 2014): embeddings, parallel 1-D
    convolutions of several widths, ReLU, max-over-time pooling, dropout and a linear classifier. The fields every
    text classifier has (``vocab_size``, ``embedding_dim``, ``pad_token_id``, ``dropout``, ``freeze_embeddings``,
    ``initializer``, ``initialize_embeddings``) are described in :class:`TextClassifierConfig`.

    Args:
        filter_sizes: Convolution widths in tokens, one convolution per width.
        num_filters: Output channels of each convolution.
    """

    model_type = "hfnlp_text_cnn"

    filter_sizes: list[int] | tuple[int, ...] = (2, 3, 4)
    num_filters: int = positive_int_field(default=256)

    def __post_init__(self, **kwargs) -> None:
        # a list, as it comes back from config.json, so that saved and loaded configs compare equal
        self.filter_sizes = list(self.filter_sizes)
        super().__post_init__(**kwargs)

    def validate_filter_sizes(self) -> None:
        """At least one convolution, each at least one token wide."""
        if not self.filter_sizes or min(self.filter_sizes) < 1:
            raise ValueError(f"filter_sizes must be a non-empty list of positive widths, got {self.filter_sizes}")


__all__ = ["TextCNNConfig"]
