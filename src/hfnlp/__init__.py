"""hfnlp: recipe-driven text classification, image captioning and image fine-tuning on the HF stack."""

__version__ = "0.1.0"
