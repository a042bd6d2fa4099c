"""Ensemble configuration: the configurations of trained text classifiers and the weight of each.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code`` loading,
where hfnlp is not installed, so it imports only transformers and huggingface_hub (no ``from __future__ import
annotations``: ``@strict`` skips string annotations).
"""

from huggingface_hub.dataclasses import strict
from transformers import PretrainedConfig

MEMBER_TYPES = ("hfnlp_fasttext", "hfnlp_text_cnn", "hfnlp_text_rnn")


@strict(accept_kwargs=True)
class EnsembleConfig(PretrainedConfig):
    r"""Configuration of :class:`EnsembleForSequenceClassification`: a weighted average of the class probabilities of
    several text classifiers that read the same token ids (one tokenizer), e.g. a bag-of-n-grams model and a
    TextCNN, each trained on its own (Dietterich 2000: members that err differently average to fewer errors).

    Args:
        members: The members' configurations, as ``config.to_dict()`` gives them (``model_type`` one of
            ``hfnlp_fasttext``, ``hfnlp_text_cnn``, ``hfnlp_text_rnn``).
        member_weights: The weight of each member's probabilities, non-negative, not all zero (normalised to sum to
            one); chosen on the validation split when the ensemble is built.
    """

    model_type = "hfnlp_ensemble"

    members: list[dict] | tuple[dict, ...] = ()
    member_weights: list[float] | tuple[float, ...] = ()

    def __post_init__(self, **kwargs) -> None:
        # lists, as they come back from config.json, so that saved and loaded configs compare equal
        self.members = [dict(member) for member in self.members]
        self.member_weights = [float(weight) for weight in self.member_weights]
        super().__post_init__(**kwargs)

    def validate_members(self) -> None:
        """At least one member of a known type, one weight each, non-negative and not all zero."""
        kinds = [member.get("model_type") for member in self.members]
        unknown = [kind for kind in kinds if kind not in MEMBER_TYPES]
        if unknown:
            raise ValueError(f"ensemble members must be of types {', '.join(MEMBER_TYPES)}, got {unknown}")
        if len(self.member_weights) != len(self.members):
            raise ValueError(f"{len(self.members)} members but {len(self.member_weights)} member_weights")
        if any(weight < 0 for weight in self.member_weights) or (self.members and sum(self.member_weights) <= 0):
            raise ValueError(f"member_weights must be non-negative and not all zero, got {self.member_weights}")


__all__ = ["EnsembleConfig"]
