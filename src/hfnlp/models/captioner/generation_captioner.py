"""Caption generation for ImageCaptioner: greedy decoding and batched beam search over its decoder steps.

Self-contained on purpose: transformers copies this file with ``modeling_captioner.py`` next to the weights for
``trust_remote_code`` loading, where hfnlp is not installed, so it imports only torch and transformers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, GenerationMixin
from transformers.utils import ModelOutput


@dataclass
class CaptionGenerationOutput(ModelOutput):
    """Output of :meth:`ImageCaptioner.generate` with ``return_dict_in_generate=True``.

    Args:
        sequences: Word ids, shape (batch, length): the start word, the caption, the end word, then padding.
        sequences_scores: Log-probability of each caption divided by ``length ** length_penalty``.
        attentions: With ``output_attentions=True``: the attention weights used to predict each word of
            ``sequences[:, 1:]``, shape (batch, length - 1, height, width) when the feature-map grid is known (from
            ``pixel_values``), else (batch, length - 1, regions); zero after the end word and without attention.
    """

    sequences: torch.LongTensor | None = None
    sequences_scores: torch.FloatTensor | None = None
    attentions: torch.FloatTensor | None = None


class CaptionGenerationMixin(GenerationMixin):
    """``generate`` for :class:`ImageCaptioner`, which provides ``_features`` (image features and grid), ``_start``
    (initial decoder state) and ``_step`` (one decoder step); transformers' own generation loop does not fit an
    LSTM decoder that attends over image regions."""

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.FloatTensor | None = None,
        encoder_features: torch.FloatTensor | None = None,
        generation_config: GenerationConfig | None = None,
        output_attentions: bool = False,
        return_dict_in_generate: bool = False,
        **kwargs,
    ) -> torch.LongTensor | CaptionGenerationOutput:
        """Caption a batch of images by greedy decoding (``num_beams=1``) or beam search.

        Args:
            pixel_values: Images, shape (batch, 3, height, width); or give ``encoder_features``.
            encoder_features: Precomputed feature maps instead of ``pixel_values``.
            generation_config: Settings; defaults to ``self.generation_config`` (``generation_config.json``).
            output_attentions: Also return the attention weights used for each word (implies a dict output).
            return_dict_in_generate: Return a :class:`CaptionGenerationOutput` instead of the ids only.
            **kwargs: Overrides of ``generation_config`` fields: ``num_beams``, ``max_new_tokens``,
                ``max_length`` (counting the start word), ``length_penalty``.

        Returns:
            Word ids (batch, length) beginning with the start word, or a :class:`CaptionGenerationOutput`.
        """
        config = copy.deepcopy(generation_config if generation_config is not None else self.generation_config)
        unused = config.update(**kwargs)
        if unused:
            raise ValueError(f"generate() got unsupported arguments: {', '.join(sorted(unused))}")
        # transformers leaves unset fields at None and applies its defaults inside its own generate()
        for name, default in (("num_beams", 1), ("length_penalty", 1.0), ("max_length", 20)):
            if getattr(config, name) is None:
                setattr(config, name, default)
        max_new_tokens = config.max_new_tokens or config.max_length - 1
        if max_new_tokens < 1:
            raise ValueError(f"nothing to generate: max_new_tokens={max_new_tokens}")
        was_training = self.training
        self.eval()
        try:
            features, grid = self._features(pixel_values, encoder_features)
            search = self._beam_search if config.num_beams > 1 else self._greedy
            sequences, scores, attentions = search(features, config, max_new_tokens)
        finally:
            self.train(was_training)
        if not (return_dict_in_generate or output_attentions):
            return sequences
        if output_attentions and attentions is not None and grid is not None:
            attentions = attentions.reshape(*attentions.shape[:2], *grid)
        return CaptionGenerationOutput(
            sequences=sequences, sequences_scores=scores, attentions=attentions if output_attentions else None
        )

    @staticmethod
    def _next_word_log_probs(logits: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
        # The start and padding words are never a valid next word.
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        log_probs[:, [config.bos_token_id, config.pad_token_id]] = float("-inf")
        return log_probs

    def _greedy(
        self, features: torch.Tensor, config: GenerationConfig, max_new_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        batch = features.shape[0]
        state, projected = self._start(features)
        words = torch.full((batch, 1), config.bos_token_id, dtype=torch.long, device=features.device)
        scores = torch.zeros(batch, device=features.device)
        lengths = torch.zeros(batch, device=features.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=features.device)
        weights_per_step = []
        for _ in range(max_new_tokens):
            logits, state, weights = self._step(words[:, -1], state, features, projected)
            log_probs = self._next_word_log_probs(logits, config)
            best = log_probs.argmax(dim=-1)
            next_words = best.masked_fill(finished, config.pad_token_id)
            scores += log_probs.gather(1, best.unsqueeze(1)).squeeze(1).masked_fill(finished, 0.0)
            lengths += (~finished).float()
            if weights is not None:
                weights_per_step.append(weights.masked_fill(finished.unsqueeze(1), 0.0))
            words = torch.cat([words, next_words.unsqueeze(1)], dim=1)
            finished |= next_words == config.eos_token_id
            if finished.all():
                break
        attentions = torch.stack(weights_per_step, dim=1) if weights_per_step else None
        return words, scores / lengths.clamp(min=1) ** config.length_penalty, attentions

    def _beam_search(
        self, features: torch.Tensor, config: GenerationConfig, max_new_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Batched beam search with length-normalised final scores, as transformers' beam search scores them.

        Each step keeps the best ``num_beams`` unfinished continuations per image among the top ``2 × num_beams``;
        a continuation ending with the end word within the top ``num_beams`` becomes a finished hypothesis scored
        ``sum log p / length ** length_penalty``. An image is done when its worst kept hypothesis beats the best
        live beam's normalised score.
        """
        batch, beams, device = features.shape[0], config.num_beams, features.device
        features = features.repeat_interleave(beams, dim=0)
        state, projected = self._start(features)
        words = torch.full((batch * beams, 1), config.bos_token_id, dtype=torch.long, device=device)
        beam_scores = torch.zeros(batch, beams, device=device)
        beam_scores[:, 1:] = float("-inf")  # all beams start identical: expand only the first
        beam_scores = beam_scores.view(-1)
        history = torch.zeros(batch * beams, 0, features.shape[1], device=device) if self.attention else None
        finished: list[list[tuple[float, torch.Tensor, torch.Tensor | None]]] = [[] for _ in range(batch)]
        done = [False] * batch
        for step in range(max_new_tokens):
            logits, state, weights = self._step(words[:, -1], state, features, projected)
            log_probs = self._next_word_log_probs(logits, config)
            vocab = log_probs.shape[-1]
            candidates = (beam_scores.unsqueeze(1) + log_probs).view(batch, beams * vocab)
            top_scores, top_ids = candidates.topk(2 * beams, dim=1)
            top_scores, top_beams, top_words = top_scores.tolist(), (top_ids // vocab).tolist(), (top_ids % vocab)
            top_words = top_words.tolist()
            length_norm = (step + 1) ** config.length_penalty
            chosen_scores, chosen_rows, chosen_words = [], [], []
            for item in range(batch):
                kept: list[tuple[float, int, int]] = []
                if done[item]:
                    kept = [(0.0, item * beams, config.pad_token_id)] * beams
                for rank in range(2 * beams):
                    if len(kept) == beams:
                        break
                    score, row, word = (
                        top_scores[item][rank],
                        item * beams + top_beams[item][rank],
                        top_words[item][rank],
                    )
                    if word != config.eos_token_id:
                        kept.append((score, row, word))
                    elif rank < beams:
                        tokens = torch.cat([words[row], words.new_tensor([word])])
                        weights_row = torch.cat([history[row], weights[row : row + 1]]) if weights is not None else None
                        finished[item].append((score / length_norm, tokens, weights_row))
                        finished[item].sort(key=lambda hypothesis: hypothesis[0], reverse=True)
                        del finished[item][beams:]
                if not done[item] and len(finished[item]) == beams:
                    done[item] = finished[item][-1][0] >= kept[0][0] / length_norm
                chosen_scores.extend(s for s, _, _ in kept)
                chosen_rows.extend(r for _, r, _ in kept)
                chosen_words.extend(w for _, _, w in kept)
            rows = torch.tensor(chosen_rows, device=device)
            words = torch.cat([words[rows], torch.tensor(chosen_words, device=device).unsqueeze(1)], dim=1)
            state = (state[0][rows], state[1][rows])
            if history is not None:
                history = torch.cat([history[rows], weights[rows].unsqueeze(1)], dim=1)
            beam_scores = torch.tensor(chosen_scores, device=device)
            if all(done):
                break
        return self._best_hypotheses(finished, done, words, beam_scores, history, config)

    @staticmethod
    def _best_hypotheses(
        finished: list[list[tuple[float, torch.Tensor, torch.Tensor | None]]],
        done: list[bool],
        words: torch.Tensor,
        beam_scores: torch.Tensor,
        history: torch.Tensor | None,
        config: GenerationConfig,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        beams = config.num_beams
        best = []
        for item, hypotheses in enumerate(finished):
            if not done[item]:  # ran out of length: live beams compete with what finished
                norm = (words.shape[1] - 1) ** config.length_penalty
                for row in range(item * beams, (item + 1) * beams):
                    weights_row = history[row] if history is not None else None
                    hypotheses.append((beam_scores[row].item() / norm, words[row], weights_row))
            best.append(max(hypotheses, key=lambda hypothesis: hypothesis[0]))
        length = max(tokens.shape[0] for _, tokens, _ in best)
        sequences = words.new_full((len(best), length), config.pad_token_id)
        scores = torch.tensor([score for score, _, _ in best], device=words.device)
        attentions = None
        if history is not None:
            attentions = history.new_zeros(len(best), length - 1, history.shape[-1])
        for item, (_, tokens, weights_row) in enumerate(best):
            sequences[item, : tokens.shape[0]] = tokens
            if attentions is not None:
                attentions[item, : weights_row.shape[0]] = weights_row
        return sequences, scores, attentions


__all__ = ["CaptionGenerationMixin", "CaptionGenerationOutput"]
