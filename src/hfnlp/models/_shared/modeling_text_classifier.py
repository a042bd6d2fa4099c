"""What every hfnlp text classifier model shares: initialisation from the config, frozen embeddings, the forward.

One real file, linked into each text family's folder (``ln -s ../_shared/...``), so that every family folder stays
self-contained: transformers copies this file (its content) next to the weights for ``trust_remote_code`` loading,
where hfnlp is not installed, so it imports only torch and transformers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

# transformers' guarded init functions: they leave alone any weight that from_pretrained loaded.
WEIGHT_INITS: dict[str, Callable[[torch.Tensor], object]] = {
    "xavier": init.xavier_uniform_,
    "kaiming": lambda weight: init.kaiming_normal_(weight, nonlinearity="relu"),
    "normal": lambda weight: init.normal_(weight, mean=0.0, std=0.02),
}


class TextClassifierPreTrainedModel(PreTrainedModel):
    """Base of the text classifiers: ``config.initializer`` applied by ``_init_weights``, ``config.freeze_embeddings``
    kept through loading and embedding replacement, and a ``forward`` around the family's :meth:`logits`.

    A family sets ``config_class``, builds its layers after the token embedding and implements :meth:`logits`.
    """

    base_model_prefix = "text_classifier"
    main_input_name = "input_ids"
    # forward() takes **kwargs only to ignore extra tokenizer outputs; without this the Trainer would pass
    # num_items_in_batch and skip dividing the (mean) loss by the gradient accumulation steps.
    accepts_loss_kwargs = False

    def __init__(self, config: PretrainedConfig, sparse_embeddings: bool = False) -> None:
        """The token embedding (``vocab_size`` × ``embedding_dim``, zero padding row, sparse gradients if asked);
        the family then adds its own layers and calls ``post_init()``."""
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embedding = nn.Embedding(
            config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id, sparse=sparse_embeddings
        )

    def _init_weights(self, module: nn.Module) -> None:
        # PyTorch's defaults first: what initializer="default" keeps and what the scheme leaves alone (norm scales,
        # embeddings unless initialize_embeddings); transformers guards the torch.nn.init calls in reset_parameters().
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        is_embedding = isinstance(module, nn.Embedding | nn.EmbeddingBag)
        if self.config.initializer == "default" or (is_embedding and not self.config.initialize_embeddings):
            return
        for name, parameter in module.named_parameters(recurse=False):
            if parameter.dim() >= 2:
                WEIGHT_INITS[self.config.initializer](parameter)
            elif name.startswith("bias"):
                init.zeros_(parameter)
        # A row slice loses the loaded-weight flag that guards the init functions, hence the explicit check.
        if is_embedding and module.padding_idx is not None and not getattr(module.weight, "_is_hf_initialized", False):
            module.weight[module.padding_idx].zero_()

    def get_input_embeddings(self) -> nn.Module:
        """The token embedding (where pretrained word vectors go): an ``nn.Embedding`` unless its table is stored
        quantized, for inference (fastText's ``table_storage: int8``)."""
        return self.embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """Replace the token embedding module; ``config.freeze_embeddings`` applies to the new one too."""
        self.embedding = value
        self._apply_freeze_embeddings()

    def tie_weights(self, *args, **kwargs) -> None:
        """Nothing to tie; re-applies ``config.freeze_embeddings``.

        ``from_pretrained`` replaces every parameter with a new, trainable one and then calls this method,
        which ``post_init`` calls as well, so this is the one place that keeps frozen embeddings frozen.
        """
        super().tie_weights(*args, **kwargs)
        self._apply_freeze_embeddings()

    def _apply_freeze_embeddings(self) -> None:
        weight = self.embedding.weight
        # An int8 table (fastText's table_storage) is for inference: it has no gradient to switch on or off.
        if weight.is_floating_point():
            weight.requires_grad_(not self.config.freeze_embeddings)

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Classify a batch of right-padded token sequences.

        Args:
            input_ids: Token ids, shape (batch, time).
            attention_mask: 1 for real tokens, 0 for padding; derived from ``pad_token_id`` when omitted.
            labels: Class indices, shape (batch,); when given, the cross-entropy loss is returned too.
            **kwargs: Ignored (e.g. ``token_type_ids`` from a BERT-style tokenizer).

        Returns:
            ``SequenceClassifierOutput`` with ``logits`` (batch, num_labels), and ``loss`` when ``labels``
            is given.
        """
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        return self.output(self.logits(input_ids, attention_mask.bool()), labels)

    @staticmethod
    def output(logits: torch.Tensor, labels: torch.LongTensor | None) -> SequenceClassifierOutput:
        """``logits`` with, when ``labels`` are given, their cross-entropy loss."""
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class scores (batch, num_labels) of right-padded ``input_ids``; ``mask`` is True for real tokens."""
        raise NotImplementedError


__all__ = ["TextClassifierPreTrainedModel"]
