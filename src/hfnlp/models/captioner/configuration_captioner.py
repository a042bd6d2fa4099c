"""ImageCaptioner configuration.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code``
loading, where hfnlp is not installed, so it imports only transformers and huggingface_hub (no
``from __future__ import annotations``: ``@strict`` checks only real annotations).
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PretrainedConfig
from transformers.utils.type_validators import interval, positive_int_field


@strict(accept_kwargs=True)
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
            encoder is built with random weights; pretrained weights are copied in when a new model is built
            (``FAMILY.build_model``) and afterwards travel inside the saved weights.
        encoder_out_index: Which feature map to use: ``None`` takes the model's ``forward_features`` (the last
            map before pooling); an integer takes that stage of timm's ``features_only`` model (e.g. ``4`` for
            VGG16's 14×14 conv5_3 map, as in the paper). Stages after it are not built.
        encoder_pretrained: Whether a new model's encoder starts from ImageNet weights (timm's, or a packaged
            file when offline). Recorded here so the model folder tells how it was made.
        encoder_weights: A local weights file (``.safetensors``/``.pth``/``.bin``) that a new model's encoder
            starts from instead of downloaded weights.
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
        label_smoothing: Label smoothing of the words' cross-entropy (Szegedy et al., 2016): the recipe's
            ``training.label_smoothing_factor``, applied here because the model computes its own loss.
        beam_size: Beams of the beam search that captions (``generation_config.num_beams``); 1 decodes greedily.
        beam_length_penalty: Exponent of the length that divides a caption's log-probability in beam search
            (``generation_config.length_penalty``); above 1 favours longer captions.
        max_caption_length: Most words of a generated caption, start and end words included
            (``generation_config.max_length``).

    The last three are the model's default generation settings: a new model's ``generation_config`` follows them
    (they bear other names than the ``GenerationConfig`` fields, which transformers keeps out of model configs).
    """

    model_type = "hfnlp_captioner"

    vocab_size: int = positive_int_field(default=10000)
    pad_token_id: int = interval(min=0)(default=0)
    bos_token_id: int = interval(min=0)(default=2)
    eos_token_id: int = interval(min=0)(default=3)
    encoder_name: str = "resnet50"
    encoder_out_index: int | None = None
    encoder_pretrained: bool = True
    encoder_weights: str | None = None
    encoder_training: Literal["frozen", "partial", "full"] = "frozen"
    encoder_trainable_stages: int = positive_int_field(default=1)
    encoder_learning_rate: float | None = None
    attention: bool = True
    embedding_dim: int = positive_int_field(default=256)
    hidden_size: int = positive_int_field(default=512)
    attention_dim: int = positive_int_field(default=512)
    # float | int: YAML reads `dropout: 0` as an int
    dropout: float | int = interval(min=0, max=1, exclude_max=True)(default=0.5)
    attention_gate: bool = True
    doubly_stochastic_coefficient: float | int = interval(min=0)(default=1.0)
    label_smoothing: float | int = interval(min=0, max=1, exclude_max=True)(default=0.0)
    beam_size: int = positive_int_field(default=3)
    beam_length_penalty: float | int = 1.0
    max_caption_length: int = interval(min=3)(default=40)

    def validate_special_token_ids(self) -> None:
        """The padding, start and end words are words of the vocabulary."""
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            if getattr(self, name) >= self.vocab_size:
                raise ValueError(f"{name} must be below vocab_size={self.vocab_size}, got {getattr(self, name)}")


__all__ = ["CaptionerConfig"]
