"""FastText-style classifier: averaged token and hashed n-gram embeddings, optional hidden layer."""

from hfnlp.models.fasttext.configuration_fasttext import FastTextConfig
from hfnlp.models.fasttext.export import exportable_fasttext
from hfnlp.models.fasttext.modeling_fasttext import FastTextForSequenceClassification, quantize_tables
from hfnlp.models.registry import ModelFamily


def _store_tables(model: FastTextForSequenceClassification, table_storage: str) -> None:
    # A run trains float32 tables; "float32" keeps them as they are.
    if table_storage == "int8":
        quantize_tables(model)


FAMILY = ModelFamily(
    name="fasttext",
    auto_classes={"AutoModelForSequenceClassification": FastTextForSequenceClassification},
    onnx_module=exportable_fasttext,
    storage_fields={"table_storage": _store_tables},
)

__all__ = ["FAMILY", "FastTextConfig", "FastTextForSequenceClassification", "quantize_tables"]
