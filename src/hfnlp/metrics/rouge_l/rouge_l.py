"""ROUGE-L exactly as COCO caption evaluation (pycocoevalcap) computes it, as an evaluate module."""

from __future__ import annotations

from hfnlp.metrics.caption_metric import CaptionMetric
from hfnlp.metrics.coco import rouge_l


class RougeL(CaptionMetric):
    """COCO caption ROUGE-L (pycocoevalcap ``Rouge()``, beta 1.2)."""

    citation_bibtex = """
@inproceedings{lin2004rouge,
  title={ROUGE: A Package for Automatic Evaluation of Summaries},
  author={Lin, Chin-Yew},
  booktitle={Text Summarization Branches Out}, year={2004}
}
"""
    metric_description = """
ROUGE-L as pycocoevalcap's Rouge(): per image, the longest-common-subsequence F-measure with beta=1.2
built from the best precision and the best recall over its references, averaged over images.
Captions are tokenised as COCO does (see hfnlp.metrics.coco).
"""
    returns = "rouge_l (`float` in [0, 1])."
    examples = """\
    >>> metric = hfnlp.metrics.load_metric("rouge_l")
    >>> metric.compute(predictions=["a dog runs"], references=[["a dog runs", "a cat sleeps"]])
    {'rouge_l': 1.0}
"""

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        """The mean ROUGE-L of tokenised captions."""
        return {"rouge_l": rouge_l(predictions, references)[0]}
