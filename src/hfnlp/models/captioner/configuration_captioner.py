"""ImageCaptioner configuration.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code``
loading, where hfnlp is not installed, so it may import nothing but transformers.
"""

from __future__ import annotations

from transformers import PretrainedConfig

ENCODER_TRAINING = ("frozen", "partial", "full")


class CaptionerConfig(PretrainedConfig):
    r"""Configuration of :class:`ImageCaptioner`: a timm CNN encoder giving a spatial feature map and an LSTM
    decoder with soft (Bahdanau) attention over it, as in *Show, Attend and Tell* (Xu et al., 2015).

    With ``attention=False`` the decoder is the tutorials' baseline (*Show and Tell*): the mean of the feature
    map initialises the LSTM state and the image is not looked at again.

    Args:
        vocab_size: Number of words of the caption vocabulary (embedding rows and output classes).
        pad_token_id: Id of the padding word; its embedding row is zero and it is never a target.
        bos_token_id: Id of the start word that begins every caption.
        eos_token_id: Id of the end word that closes every caption.
        encoder_name: Any timm model name (``"resnet50"``, ``"vgg16"``, ``"tf_efficientnet_lite0"``, ...). The
            encoder is built with random weights; pretrained weights are copied in when a run creates the model
            and afterwards travel inside the saved weights.
        encoder_out_index: Which feature map to use: ``None`` takes the model's ``forward_features`` (the last
            map before pooling); an integer takes that stage of timm's ``features_only`` model (e.g. ``4`` for
            VGG16's 14×14 conv5_3 map, as in the paper). Stages after it are not built.
        encoder_pretrained: Whether a run initialises the encoder with ImageNet weights (timm's, or a packaged
            file when offline). Recorded here so the model folder tells how it was made.
        encoder_weights: A local weights file (``.safetensors``/``.pth``/``.bin``) that a run loads into the
            encoder instead of downloading.
        encoder_training: ``"frozen"`` (no encoder gradients; allows cached feature maps), ``"partial"`` (only
            the last ``encoder_trainable_stages`` top-level blocks train) or ``"full"``.
        encoder_trainable_stages: Number of trailing top-level encoder modules that train when ``"partial"``.
        encoder_learning_rate: Learning rate of the encoder's parameters when they train (the decoder uses the
            recipe's ``training.learning_rate``); ``None`` uses the same rate for both.
        attention: Soft attention over the feature map (Show, Attend and Tell) or the no-attention baseline.
        embedding_dim: Size of the word embeddings.
        hidden_size: Size of the LSTM state.
        attention_dim: Size of the attention's hidden layer.
        dropout: Dropout before the output layer.
        attention_gate: Scale the attended context by a gating scalar ``sigmoid(f_beta(h))`` (paper section 4.2.1).
        doubly_stochastic_coefficient: Weight λ of the doubly stochastic attention regulariser
            ``λ Σ_i (1 - Σ_t α_ti)²`` that pushes the decoder to look at every region once over the caption.
    """

    model_type = "hfnlp_captioner"

    vocab_size: int = 10000
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3
    encoder_name: str = "resnet50"
    encoder_out_index: int | None = None
    encoder_pretrained: bool = True
    encoder_weights: str | None = None
    encoder_training: str = "frozen"
    encoder_trainable_stages: int = 1
    encoder_learning_rate: float | None = None
    attention: bool = True
    embedding_dim: int = 256
    hidden_size: int = 512
    attention_dim: int = 512
    dropout: float = 0.5
    attention_gate: bool = True
    doubly_stochastic_coefficient: float = 1.0

    def __post_init__(self, **kwargs) -> None:
        if self.encoder_training not in ENCODER_TRAINING:
            raise ValueError(
                f"encoder_training={self.encoder_training!r} is not valid; choose one of "
                f"{', '.join(map(repr, ENCODER_TRAINING))}"
            )
        for name in ("vocab_size", "embedding_dim", "hidden_size", "attention_dim", "encoder_trainable_stages"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            if not 0 <= getattr(self, name) < self.vocab_size:
                raise ValueError(f"{name} must be in [0, vocab_size={self.vocab_size}), got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.doubly_stochastic_coefficient < 0:
            raise ValueError(f"doubly_stochastic_coefficient must be >= 0, got {self.doubly_stochastic_coefficient}")
        super().__post_init__(**kwargs)


__all__ = ["CaptionerConfig"]
