"""TextRNN: embeddings, a recurrent encoder (RNN/GRU/LSTM, optionally bidirectional), pooling, linear head."""

from hfnlp.models.registry import ModelFamily
from hfnlp.models.text_rnn.configuration_text_rnn import TextRNNConfig
from hfnlp.models.text_rnn.export import ExportableTextRNN
from hfnlp.models.text_rnn.modeling_text_rnn import TextRNNForSequenceClassification

FAMILY = ModelFamily(
    name="text_rnn",
    auto_classes={"AutoModelForSequenceClassification": TextRNNForSequenceClassification},
    onnx_module=ExportableTextRNN,
)

__all__ = ["FAMILY", "TextRNNConfig", "TextRNNForSequenceClassification"]
