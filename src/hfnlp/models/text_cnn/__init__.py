"""TextCNN (Kim 2014): embeddings, 1-D convolutions of several widths, max-over-time pooling, linear head."""

from hfnlp.models.onnx_export import TextClassifierLogits
from hfnlp.models.registry import ModelFamily
from hfnlp.models.text_cnn.configuration_text_cnn import TextCNNConfig
from hfnlp.models.text_cnn.modeling_text_cnn import TextCNNForSequenceClassification

FAMILY = ModelFamily(
    name="text_cnn",
    auto_classes={"AutoModelForSequenceClassification": TextCNNForSequenceClassification},
    onnx_module=TextClassifierLogits,
)

__all__ = ["FAMILY", "TextCNNConfig", "TextCNNForSequenceClassification"]
