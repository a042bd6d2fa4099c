"""Ensemble of trained text classifiers that share a tokenizer: weighted mean of their class probabilities."""

from hfnlp.errors import HfnlpError
from hfnlp.models.ensemble.configuration_ensemble import EnsembleConfig
from hfnlp.models.ensemble.modeling_ensemble import EnsembleForSequenceClassification
from hfnlp.models.registry import ModelFamily


def _refuse_training(config: EnsembleConfig) -> EnsembleForSequenceClassification:
    raise HfnlpError(
        "model.type ensemble: an ensemble is built from trained models (hfnlp train --data tries it), not trained "
        "from a recipe; train its members (fasttext, text_cnn, text_rnn) instead"
    )


FAMILY = ModelFamily(
    name="ensemble",
    auto_classes={"AutoModelForSequenceClassification": EnsembleForSequenceClassification},
    builder=_refuse_training,
)

__all__ = ["FAMILY", "EnsembleConfig", "EnsembleForSequenceClassification"]
