"""Caption generation for ImageCaptioner through transformers' ``GenerationMixin``: greedy, beam search, sampling
and every logits processor (``no_repeat_ngram_size``, ``repetition_penalty``, ...), with the LSTM state carried
from step to step in a :class:`CaptionerCache`.

Self-contained on purpose: transformers copies this file with ``modeling_captioner.py`` next to the weights for
``trust_remote_code`` loading, where hfnlp is not installed, so it imports only torch and transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, GenerationMixin
from transformers.utils import ModelOutput

# Generation settings that the captioner cannot honour, each with its default values (a setting counts as given when
# it is none of them) and why: refused by name rather than silently ignored.
DECODER_STATE = "the LSTM decoder carries its own state from step to step"
MOVED_TO_HUB = "a decoding strategy transformers moved to Hub code"
UNSUPPORTED_SETTINGS: dict[str, tuple[tuple[Any, ...], str]] = {
    "use_cache": ((None, True), DECODER_STATE),
    "cache_implementation": ((None,), DECODER_STATE),
    "prefill_chunk_size": ((None,), DECODER_STATE),
    "output_hidden_states": ((None, False), "the decoder has one LSTM cell, no hidden states per layer"),
    "prompt_lookup_num_tokens": ((None,), "assisted decoding needs a croppable cache"),
    "assistant_early_exit": ((None,), "assisted decoding needs a croppable cache"),
    "use_mtp": ((None, False), "assisted decoding needs a croppable cache"),
    "penalty_alpha": ((None, 0, 0.0), MOVED_TO_HUB),
    "dola_layers": ((None,), MOVED_TO_HUB),
    "num_beam_groups": ((None, 1), MOVED_TO_HUB),
    "diversity_penalty": ((None, 0, 0.0), MOVED_TO_HUB),
    "constraints": ((None,), MOVED_TO_HUB),
    "force_words_ids": ((None,), MOVED_TO_HUB),
}
UNSUPPORTED_ARGUMENTS = ("assistant_model", "cache", "inputs_embeds")


@dataclass
class CaptionGenerationOutput(ModelOutput):
    """Output of :meth:`ImageCaptioner.generate` with ``return_dict_in_generate=True`` or ``output_attentions=True``.

    Args:
        sequences: Word ids, shape (batch × num_return_sequences, length): the start word, the caption, the end
            word, then padding.
        sequences_scores: With beam search and ``output_scores=True``: each caption's log-probability divided by
            ``generated length ** length_penalty``.
        scores: With ``output_scores=True``: the processed next-word scores of each step (transformers' ``scores``).
        logits: With ``output_logits=True``: the raw next-word logits of each step.
        beam_indices: With beam search and ``output_logits=True``: the beam each word of ``sequences`` came from.
        attentions: With ``output_attentions=True``: the attention weights used to predict each word of
            ``sequences[:, 1:]``, shape (batch, length - 1, height, width) when the feature-map grid is known (from
            ``pixel_values``), else (batch, length - 1, regions); zero after the end word; ``None`` without
            attention.
    """

    sequences: torch.LongTensor | None = None
    sequences_scores: torch.FloatTensor | None = None
    scores: tuple[torch.FloatTensor, ...] | None = None
    logits: tuple[torch.FloatTensor, ...] | None = None
    beam_indices: torch.LongTensor | None = None
    attentions: torch.FloatTensor | None = None


class CaptionerCache:
    """The decoder's state between generation steps: the LSTM's ``(hidden, cell)`` and the attention's projected
    image features, one row per sequence being generated. ``forward`` creates and updates it; beam search reorders
    it with :meth:`reorder_cache`."""

    # What transformers' generation loop asks of a cache before deciding how to drive it.
    is_compileable = False
    is_croppable = False

    def __init__(self, state: tuple[torch.Tensor, torch.Tensor], projected: torch.Tensor | None, length: int) -> None:
        self.state = state
        self.projected = projected
        self.length = length

    def get_seq_length(self) -> int:
        """Number of words the decoder has read so far."""
        return self.length

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Make row ``i`` continue the beam at row ``beam_idx[i]`` (in place)."""
        # Only the LSTM state differs between beams: beam_idx picks among the beams of one image, whose projected
        # features (like the image features themselves) are the same rows, so copying them would change nothing.
        self.state = tuple(part.index_select(0, beam_idx.to(part.device)) for part in self.state)


class CaptionGenerationMixin(GenerationMixin):
    """``generate`` for :class:`ImageCaptioner`: encodes the images once, then runs transformers' generation loop
    over the decoder (``forward`` with a :class:`CaptionerCache`). The model provides ``_features`` (image features
    and grid) and ``forward``."""

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The decoder's state is an LSTM's, not attention keys and values: forward makes its own CaptionerCache.
        return False

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.FloatTensor | None = None,
        encoder_features: torch.FloatTensor | None = None,
        input_ids: torch.LongTensor | None = None,
        generation_config: GenerationConfig | None = None,
        **kwargs: Any,
    ) -> torch.LongTensor | CaptionGenerationOutput:
        """Caption a batch of images with transformers' generation (see ``GenerationMixin.generate``).

        Args:
            pixel_values: Images, shape (batch, 3, height, width); or give ``encoder_features``.
            encoder_features: Precomputed feature maps instead of ``pixel_values``.
            input_ids: The beginning of each caption, starting with the start word; default: the start word alone.
            generation_config: Settings; defaults to ``self.generation_config`` (``generation_config.json``).
            **kwargs: Overrides of ``generation_config`` fields — ``num_beams``, ``do_sample``, ``temperature``,
                ``top_k``, ``top_p``, ``no_repeat_ngram_size``, ``repetition_penalty``, ``length_penalty``,
                ``max_new_tokens``, ``min_new_tokens``, ``num_return_sequences``, ``output_scores``,
                ``return_dict_in_generate``, ... — and ``GenerationMixin.generate`` arguments (``logits_processor``,
                ``stopping_criteria``, ``streamer``). ``output_attentions=True`` adds each word's attention map (and
                implies a dict output).

        Returns:
            Word ids (batch × num_return_sequences, length) beginning with the start word, or a
            :class:`CaptionGenerationOutput`.

        Raises:
            ValueError: A setting the captioner cannot honour (named), or an argument no part of generation uses.
        """
        if kwargs.get("output_attentions"):
            kwargs.setdefault("return_dict_in_generate", True)
        config, model_kwargs = self._prepare_generation_config(generation_config, **kwargs)
        check_supported(config, model_kwargs)
        # The start and padding words are never a valid next word (the model was never taught otherwise).
        config.suppress_tokens = sorted(
            {*(config.suppress_tokens or []), config.bos_token_id, config.pad_token_id} - {None}
        )
        # Attention maps come from one teacher-forced pass over the finished captions: the loop's own per-step
        # attentions belong to beams that beam search reorders and drops.
        with_attentions = bool(model_kwargs.pop("output_attentions", False))
        config.output_attentions = False
        # Switching modes walks every module of the encoder: a few milliseconds a call, so only when needed.
        was_training = self.training
        if was_training:
            self.eval()
        try:
            features, grid = self._features(pixel_values, encoder_features)
            if input_ids is None:
                input_ids = torch.full((features.shape[0], 1), config.bos_token_id, device=features.device)
            if config.max_new_tokens is not None:
                # The same limit as max_length, which transformers would otherwise warn overrides the model's own
                config.max_length, config.max_new_tokens = input_ids.shape[1] + config.max_new_tokens, None
            output = super().generate(
                generation_config=config, input_ids=input_ids, encoder_features=features, **model_kwargs
            )
            sequences = output.sequences if config.return_dict_in_generate else output
            attentions = self._word_attentions(features, sequences, grid) if with_attentions else None
        finally:
            if was_training:
                self.train()
        if not config.return_dict_in_generate:
            return sequences
        return CaptionGenerationOutput(
            sequences=sequences,
            sequences_scores=output.get("sequences_scores"),
            scores=output.get("scores"),
            logits=output.get("logits"),
            beam_indices=output.get("beam_indices"),
            attentions=attentions,
        )

    def _word_attentions(
        self, features: torch.Tensor, sequences: torch.Tensor, grid: tuple[int, int] | None
    ) -> torch.Tensor | None:
        """The attention weights with which the decoder predicts each word of ``sequences[:, 1:]``, zero after the
        end word, shaped to ``grid`` when known; ``None`` without attention."""
        copies = sequences.shape[0] // features.shape[0]  # num_return_sequences
        attentions = self(encoder_features=features.repeat_interleave(copies, dim=0), input_ids=sequences).attentions
        if attentions is None:
            return None
        ended = (sequences[:, 1:] == self.generation_config.eos_token_id).long().cumsum(dim=1)
        after_end = torch.cat([ended.new_zeros(ended.shape[0], 1), ended[:, :-1]], dim=1) > 0
        attentions = attentions.masked_fill(after_end.unsqueeze(-1), 0.0)
        return attentions.reshape(*attentions.shape[:2], *grid) if grid is not None else attentions


def check_supported(config: GenerationConfig, model_kwargs: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first generation setting or argument the captioner cannot honour."""
    for name in UNSUPPORTED_ARGUMENTS:
        if model_kwargs.get(name) is not None:
            raise ValueError(f"generate() of the image captioner does not support {name} ({DECODER_STATE})")
    for name, (defaults, why) in UNSUPPORTED_SETTINGS.items():
        value = getattr(config, name, None)
        if not any(value is default or value == default for default in defaults):
            raise ValueError(f"generate() of the image captioner does not support {name}={value!r} ({why})")


__all__ = ["CaptionGenerationMixin", "CaptionGenerationOutput", "CaptionerCache"]
