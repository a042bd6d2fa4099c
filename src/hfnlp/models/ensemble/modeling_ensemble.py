"""Ensemble of text classifiers: the weighted average of the members' class probabilities.

Self-contained on purpose: transformers copies this file and the member families' files it imports (linked into
this folder) next to the weights for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports
only torch and transformers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_ensemble import EnsembleConfig
from .configuration_fasttext import FastTextConfig
from .configuration_text_cnn import TextCNNConfig
from .configuration_text_rnn import TextRNNConfig
from .modeling_fasttext import FastTextForSequenceClassification
from .modeling_text_cnn import TextCNNForSequenceClassification
from .modeling_text_rnn import TextRNNForSequenceClassification

MEMBER_CLASSES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {
    "hfnlp_fasttext": (FastTextConfig, FastTextForSequenceClassification),
    "hfnlp_text_cnn": (TextCNNConfig, TextCNNForSequenceClassification),
    "hfnlp_text_rnn": (TextRNNConfig, TextRNNForSequenceClassification),
}


class EnsembleForSequenceClassification(PreTrainedModel):
    """Members that read the same token ids; ``logits`` are the log of the weighted mean of their probabilities, so
    that ``softmax(logits)`` is the ensemble's class distribution."""

    config_class = EnsembleConfig
    base_model_prefix = "ensemble"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False

    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__(config)
        members = []
        for member in config.members:
            config_class, model_class = MEMBER_CLASSES[member["model_type"]]
            members.append(model_class(config_class.from_dict(member)))
        self.members = nn.ModuleList(members)
        # Plain numbers, not a parameter: chosen on validation, never trained; in the config, not the state dict.
        total = sum(config.member_weights)
        self._weights = [weight / total for weight in config.member_weights]
        self.post_init()

    @classmethod
    def from_members(
        cls, members: Sequence[PreTrainedModel], weights: Sequence[float]
    ) -> EnsembleForSequenceClassification:
        """An ensemble of trained ``members`` (same labels, same token ids) with their weights, in eval mode."""
        config = EnsembleConfig(
            members=[member.config.to_dict() for member in members],
            member_weights=list(weights),
            id2label=members[0].config.id2label,
            label2id=members[0].config.label2id,
        )
        ensemble = cls(config)
        for target, member in zip(ensemble.members, members, strict=True):
            target.load_state_dict(member.state_dict())
        return ensemble.eval()

    def _init_weights(self, module: nn.Module) -> None:
        # The members are trained models, loaded with their weights: nothing to initialise.
        return

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Classify a batch of right-padded token sequences (the members' ``forward`` arguments); with ``labels``
        the negative log-likelihood of the averaged distribution is returned as ``loss``."""
        probabilities = 0
        for weight, member in zip(self._weights, self.members, strict=True):
            if weight > 0:
                logits = member(input_ids=input_ids, attention_mask=attention_mask).logits
                probabilities = probabilities + weight * torch.softmax(logits.float(), dim=-1)
        logits = torch.log(probabilities.clamp(min=torch.finfo(torch.float32).tiny))
        loss = nn.functional.nll_loss(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


__all__ = ["EnsembleForSequenceClassification"]
