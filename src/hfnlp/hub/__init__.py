"""Sharing: complete model folders with model cards, pushing them to the Hub, and ONNX export."""

from hfnlp.hub.model_card import CardSource, find_placeholders, render_model_card, write_model_card
from hfnlp.hub.model_folder import export_model_folder, finish_model_folder, locate_model_folder
from hfnlp.hub.push import HubError, push_model_folder

__all__ = [
    "CardSource",
    "HubError",
    "export_model_folder",
    "find_placeholders",
    "finish_model_folder",
    "locate_model_folder",
    "push_model_folder",
    "render_model_card",
    "write_model_card",
]
