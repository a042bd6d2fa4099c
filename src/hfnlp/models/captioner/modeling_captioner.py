"""ImageCaptioner: a timm CNN encoder and an LSTM decoder with soft attention (Show, Attend and Tell).

Self-contained on purpose: transformers copies this file, ``configuration_captioner.py`` and
``generation_captioner.py`` next to the weights for ``trust_remote_code`` loading, where hfnlp is not installed,
so it imports only torch, timm and transformers. The encoder is always built with random weights
(``pretrained=False``); a trained model's encoder weights are in its safetensors file, so loading never needs the
Hub.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_captioner import CaptionerConfig
from .generation_captioner import CaptionerCache, CaptionGenerationMixin


@dataclass
class CaptionerOutput(ModelOutput):
    """Output of :meth:`ImageCaptioner.forward` (teacher forcing).

    Args:
        loss: Cross-entropy over the caption words plus the doubly stochastic attention penalty, when ``labels``
            are given.
        logits: Next-word scores, shape (batch, caption length - 1, vocab_size).
        attentions: Attention weights over the feature-map regions for each predicted word, shape
            (batch, caption length - 1, regions); ``None`` without attention.
        cache: With ``use_cache=True``: the decoder's state after the last word, to continue from.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    attentions: torch.FloatTensor | None = None
    cache: CaptionerCache | None = None


class SoftAttention(nn.Module):
    """Additive (Bahdanau) attention: ``e_ti = w · tanh(W_a a_i + W_h h_{t-1})``, ``α_t = softmax(e_t)``."""

    def __init__(self, encoder_dim: int, hidden_size: int, attention_dim: int) -> None:
        super().__init__()
        self.feature_projection = nn.Linear(encoder_dim, attention_dim)
        self.hidden_projection = nn.Linear(hidden_size, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def forward(
        self, features: torch.Tensor, projected_features: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context vector (batch, encoder_dim) and weights (batch, regions) for the previous ``hidden`` state.

        ``projected_features`` is ``feature_projection(features)``, computed once per image by the caller.
        """
        energy = torch.tanh(projected_features + self.hidden_projection(hidden).unsqueeze(1))
        weights = torch.softmax(self.score(energy).squeeze(-1), dim=-1)
        return torch.bmm(weights.unsqueeze(1), features).squeeze(1), weights


class CaptionerPreTrainedModel(PreTrainedModel):
    """Weight initialization and loading glue for ImageCaptioner."""

    config_class = CaptionerConfig
    base_model_prefix = "captioner"
    main_input_name = "pixel_values"
    # forward() takes **kwargs only to ignore extra collator outputs; without this the Trainer would pass
    # num_items_in_batch and skip dividing the (mean) loss by the gradient accumulation steps.
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's own defaults; transformers guards the torch.nn.init calls behind reset_parameters() so
        # weights loaded by from_pretrained are left alone.
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def build_encoder(config: CaptionerConfig) -> nn.Module:
    """The timm backbone named by ``config.encoder_name``, with random weights, cut at the chosen feature map."""
    if config.encoder_out_index is None:
        return timm.create_model(config.encoder_name, pretrained=False, num_classes=0, global_pool="")
    return timm.create_model(
        config.encoder_name, pretrained=False, features_only=True, out_indices=(config.encoder_out_index,)
    )


def encoder_channels(encoder: nn.Module) -> int:
    """Number of channels of the feature map a :func:`build_encoder` backbone returns."""
    if hasattr(encoder, "feature_info") and hasattr(encoder.feature_info, "channels"):
        return encoder.feature_info.channels()[-1]
    return encoder.num_features


class ImageCaptioner(CaptionerPreTrainedModel, CaptionGenerationMixin):
    """Image captioner: CNN feature map → LSTM decoder with soft attention (or the no-attention baseline).

    Train with teacher forcing through :meth:`forward`; caption with :meth:`generate` (transformers' generation:
    greedy, beam search, sampling).
    Both accept either ``pixel_values`` (images as the image processor prepares them) or ``encoder_features``
    (feature maps computed earlier by :meth:`encode_images`, e.g. cached for a frozen encoder).
    """

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__(config)
        self.encoder = build_encoder(config)
        encoder_dim = encoder_channels(self.encoder)
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.init_hidden = nn.Linear(encoder_dim, config.hidden_size)
        self.init_cell = nn.Linear(encoder_dim, config.hidden_size)
        self.attention = (
            SoftAttention(encoder_dim, config.hidden_size, config.attention_dim) if config.attention else None
        )
        self.gate = nn.Linear(config.hidden_size, 1) if config.attention and config.attention_gate else None
        lstm_input = config.embedding_dim + (encoder_dim if config.attention else 0)
        self.lstm = nn.LSTMCell(lstm_input, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden_size, config.vocab_size)
        self.post_init()
        self._apply_encoder_training()
        # The config's settings for generation (from_pretrained then reads generation_config.json, if saved).
        self.generation_config.update(
            num_beams=config.beam_size,
            length_penalty=config.beam_length_penalty,
            max_length=config.max_caption_length,
        )

    # ---- encoder training mode ----

    def _apply_encoder_training(self) -> None:
        mode = self.config.encoder_training
        self.encoder.requires_grad_(mode == "full")
        if mode == "partial":
            for module in self.encoder_stages()[-self.config.encoder_trainable_stages :]:
                module.requires_grad_(True)

    def encoder_stages(self) -> list[nn.Module]:
        """The encoder's top-level blocks that hold parameters and feed the feature map, sequential containers
        opened one level (``blocks.0`` … ``blocks.6``, ``conv_head`` for EfficientNet); ``"partial"`` trains the
        last ones. Blocks after the chosen ``encoder_out_index`` (which timm may still build) are left out."""
        output = None
        if hasattr(self.encoder, "feature_info") and hasattr(self.encoder.feature_info, "module_name"):
            output = self.encoder.feature_info.module_name()[-1].replace(".", "_")
        stages = []
        for name, child in self.encoder.named_children():
            if isinstance(child, nn.Sequential | nn.ModuleList):
                parts = [(f"{name}_{index}", part) for index, part in enumerate(child)]
            else:
                parts = [(name, child)]
            for part_name, part in parts:
                if any(True for _ in part.parameters()):
                    stages.append(part)
                if output is not None and (output == part_name or output.startswith(f"{part_name}_")):
                    return stages
        return stages

    def tie_weights(self, *args, **kwargs) -> None:
        """Nothing to tie; re-applies ``config.encoder_training``.

        ``from_pretrained`` replaces every parameter with a new, trainable one and then calls this method, so
        this is the one place that keeps a frozen encoder frozen after loading.
        """
        super().tie_weights(*args, **kwargs)
        self._apply_encoder_training()

    def train(self, mode: bool = True) -> ImageCaptioner:
        """Set training mode; a frozen encoder stays in eval mode so its batch-norm statistics never move."""
        super().train(mode)
        if self.config.encoder_training == "frozen":
            self.encoder.eval()
        return self

    @property
    def encoder_is_frozen(self) -> bool:
        """Whether no encoder parameter trains (so its feature maps can be computed once and cached)."""
        return not any(p.requires_grad for p in self.encoder.parameters())

    # ---- encoding ----

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The encoder's feature map of each image, shape (batch, channels, height, width)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_is_frozen):
            if self.config.encoder_out_index is None:
                maps = self.encoder.forward_features(pixel_values)
            else:
                maps = self.encoder(pixel_values)[0]
        if maps.dim() != 4:
            raise ValueError(
                f"encoder {self.config.encoder_name!r} gives features of shape {tuple(maps.shape)}; the captioner "
                "needs a CNN feature map (batch, channels, height, width)"
            )
        return maps

    def _features(
        self, pixel_values: torch.Tensor | None, encoder_features: torch.Tensor | None
    ) -> tuple[torch.Tensor, tuple[int, int] | None]:
        """Region features (batch, regions, channels) and the (height, width) grid when known."""
        if (pixel_values is None) == (encoder_features is None):
            raise ValueError("give exactly one of pixel_values or encoder_features")
        if encoder_features is not None:
            if encoder_features.dim() == 4:
                grid = tuple(encoder_features.shape[2:])
                encoder_features = encoder_features.flatten(2).transpose(1, 2)
            else:
                grid = None
            return encoder_features.to(self.output.weight.dtype), grid
        maps = self.encode_images(pixel_values.to(self.output.weight.dtype))
        return maps.flatten(2).transpose(1, 2), tuple(maps.shape[2:])

    # ---- decoding ----

    def _start(self, features: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """Initial LSTM state from the mean region feature, and the attention's projected features."""
        mean = features.mean(dim=1)
        state = (self.init_hidden(mean), self.init_cell(mean))
        projected = self.attention.feature_projection(features) if self.attention is not None else None
        return state, projected

    def _step(
        self,
        words: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        features: torch.Tensor,
        projected: torch.Tensor | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        """One decoder step: next-word logits, new state and attention weights, given the previous words."""
        inputs = self.embedding(words)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(features, projected, state[0])
            if self.gate is not None:
                context = torch.sigmoid(self.gate(state[0])) * context
            inputs = torch.cat([inputs, context], dim=-1)
        hidden, cell = self.lstm(inputs, state)
        return self.output(self.dropout(hidden)), (hidden, cell), weights

    def _teacher_forced(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor],
        features: torch.Tensor,
        projected: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (batch, length - 1, vocab) predicting each next word, and attention weights, for whole captions.

        Each step runs only on the captions that still have a word to predict (Show, Attend and Tell's decoding
        by length): the rows are sorted longest first, so those are the first ``active`` rows. In a random batch
        of Flickr8k captions the longest has 25 tokens and the mean 14, so padding was 45% of the work; a padded
        position's logits and weights stay 0, where the loss ignores them (label -100, attention mask 0)."""
        lengths = attention_mask.sum(dim=1)
        order = lengths.argsort(descending=True)
        active_at = (lengths[order].unsqueeze(0) > torch.arange(1, input_ids.shape[1]).unsqueeze(1)).sum(dim=1)
        words, features = input_ids[order], features[order]
        projected = projected[order] if projected is not None else None
        state = (state[0][order], state[1][order])
        batch, steps = input_ids.shape[0], input_ids.shape[1] - 1
        all_logits, all_weights = [], []
        for position, active in enumerate(active_at.tolist()):
            if active == 0:
                break
            if active < state[0].shape[0]:
                state = (state[0][:active], state[1][:active])
            logits, state, weights = self._step(
                words[:active, position],
                state,
                features[:active],
                projected[:active] if projected is not None else None,
            )
            all_logits.append(nn.functional.pad(logits, (0, 0, 0, batch - active)))
            if weights is not None:
                all_weights.append(nn.functional.pad(weights, (0, 0, 0, batch - active)))
        if not all_logits:
            empty = features.new_zeros(batch, steps, self.output.out_features)
            return empty, (features.new_zeros(batch, steps, features.shape[1]) if self.attention else None)
        missing, inverse = steps - len(all_logits), order.argsort()  # positions no caption reaches; input order

        def in_input_order(per_step: list[torch.Tensor]) -> torch.Tensor:
            return nn.functional.pad(torch.stack(per_step, dim=1), (0, 0, 0, missing))[inverse]

        return in_input_order(all_logits), (in_input_order(all_weights) if self.attention is not None else None)

    def forward(
        self,
        pixel_values: torch.FloatTensor | None = None,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        encoder_features: torch.FloatTensor | None = None,
        cache: CaptionerCache | None = None,
        use_cache: bool = False,
        **kwargs,
    ) -> CaptionerOutput:
        """Teacher-forced next-word prediction for captions of the given images; or, with ``use_cache``, one
        generation step (what ``generate`` calls).

        Args:
            pixel_values: Images, shape (batch, 3, height, width); or give ``encoder_features``.
            input_ids: Captions as word ids ``<start> w1 … wn <end> <pad>…``, shape (batch, length).
            attention_mask: 1 for real words, 0 for padding; derived from ``pad_token_id`` when omitted.
            labels: Target ids (usually ``input_ids`` with padding set to -100); word ``t + 1`` is predicted
                from words ``≤ t``. When given, the loss is returned.
            encoder_features: Precomputed feature maps, (batch, channels, height, width) or
                (batch, regions, channels), instead of ``pixel_values``.
            cache: The decoder's state after the words already read (from a previous call with ``use_cache``);
                ``input_ids`` then holds only the words that follow.
            use_cache: Read every word of ``input_ids`` (predicting the word after each, the last one's included)
                and return the state after them as ``cache``.
            **kwargs: Ignored (extra collator outputs).

        Returns:
            :class:`CaptionerOutput` with ``logits`` predicting each next word (the words of ``input_ids[:, 1:]``,
            0 where that word is padding; with ``use_cache``, the word after each of ``input_ids``), the attention
            weights (0 likewise), the loss when
            ``labels`` is given, and the ``cache`` with ``use_cache``.
        """
        if input_ids is None:
            raise ValueError("input_ids (the captions) are required for teacher forcing; use generate() to caption")
        if use_cache and labels is not None:
            raise ValueError("labels are for teacher forcing, where use_cache must be off")
        features, _ = self._features(pixel_values, encoder_features)
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        if cache is None:
            state, projected = self._start(features)
        else:
            state, projected = cache.state, cache.projected
        if use_cache:
            all_logits, all_weights = [], []
            for position in range(input_ids.shape[1]):
                logits, state, weights = self._step(input_ids[:, position], state, features, projected)
                all_logits.append(logits)
                all_weights.append(weights)
            logits = torch.stack(all_logits, dim=1)
            attentions = torch.stack(all_weights, dim=1) if self.attention is not None else None
        else:
            logits, attentions = self._teacher_forced(input_ids, attention_mask, state, features, projected)
        loss = None
        if labels is not None:
            targets = labels[:, 1:]
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), label_smoothing=self.config.label_smoothing
            )
            if attentions is not None and self.config.doubly_stochastic_coefficient > 0:
                # Σ_t α_ti over the real steps of each caption should be close to 1 for every region i.
                steps = attention_mask[:, 1:].unsqueeze(-1).to(attentions.dtype)
                coverage = (attentions * steps).sum(dim=1)
                loss = loss + self.config.doubly_stochastic_coefficient * ((1.0 - coverage) ** 2).mean()
        if use_cache:
            read = input_ids.shape[1] + (cache.length if cache is not None else 0)
            cache = CaptionerCache(state, projected, read)
        return CaptionerOutput(loss=loss, logits=logits, attentions=attentions, cache=cache if use_cache else None)


__all__ = ["CaptionerOutput", "CaptionerPreTrainedModel", "ImageCaptioner"]
