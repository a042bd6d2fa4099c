"""FastText-style classifier: averaged token and hashed n-gram embeddings, optional hidden layer."""

from hfnlp.models.fasttext.configuration_fasttext import FastTextConfig
from hfnlp.models.fasttext.export import exportable_fasttext
from hfnlp.models.fasttext.modeling_fasttext import FastTextForSequenceClassification
from hfnlp.models.registry import ModelFamily

FAMILY = ModelFamily(
    name="fasttext",
    auto_classes={"AutoModelForSequenceClassification": FastTextForSequenceClassification},
    onnx_module=exportable_fasttext,
)

__all__ = ["FAMILY", "FastTextConfig", "FastTextForSequenceClassification"]
