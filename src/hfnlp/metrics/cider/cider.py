"""CIDEr-D exactly as COCO caption evaluation (pycocoevalcap) computes it, as an evaluate module."""

from __future__ import annotations

from hfnlp.metrics.caption_metric import CaptionMetric
from hfnlp.metrics.coco import cider_d


class Cider(CaptionMetric):
    """COCO caption CIDEr-D (pycocoevalcap ``Cider()``: sigma 6, clipping, x10)."""

    citation_bibtex = """
@inproceedings{vedantam2015cider,
  title={CIDEr: Consensus-based Image Description Evaluation},
  author={Vedantam, Ramakrishna and Zitnick, C. Lawrence and Parikh, Devi},
  booktitle={CVPR}, year={2015}
}
"""
    metric_description = """
CIDEr-D as pycocoevalcap's Cider(): tf-idf weighted 1..4-gram cosine similarity with clipping and a
Gaussian length penalty (sigma=6), averaged over references and n-gram orders, times 10. The document
frequencies come from the references of the evaluated set, so the score depends on the whole set
(a single image always scores 0). Captions are tokenised as COCO does (see hfnlp.metrics.coco).
"""
    returns = "cider (`float` in [0, 10])."
    examples = """\
    >>> metric = hfnlp.metrics.load_metric("cider")
    >>> metric.compute(predictions=["a dog runs", "a red car"], references=[["a dog runs"], ["a blue car"]])
    {'cider': 4.375000000000001}
"""

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        """The corpus CIDEr-D of tokenised captions."""
        return {"cider": cider_d(predictions, references)[0]}
