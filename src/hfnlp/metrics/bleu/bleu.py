"""Corpus-level BLEU-1..4 as COCO caption evaluation (pycocoevalcap) computes it: an evaluate module."""

from __future__ import annotations

from hfnlp.metrics.caption_metric import CaptionMetric
from hfnlp.metrics.coco import corpus_bleu


class Bleu(CaptionMetric):
    """COCO caption BLEU-1..4 (pycocoevalcap ``Bleu(4)``, "closest" reference length)."""

    citation_bibtex = """
@inproceedings{papineni2002bleu,
  title={BLEU: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={ACL}, year={2002}
}
"""
    metric_description = """
Corpus-level BLEU-1..4 as pycocoevalcap's Bleu(4): clipped n-gram counts pooled over all images,
cumulative geometric means of the 1..n-gram precisions, brevity penalty against the reference length
closest to each prediction ("closest" option), pycocoevalcap's 1e-15 / 1e-9 smoothing constants.
Captions are tokenised as COCO does (pure-Python stand-in for PTBTokenizer, see hfnlp.metrics.coco).
"""
    returns = "bleu_1, bleu_2, bleu_3, bleu_4 (`float` in [0, 1])."
    examples = """\
    >>> metric = hfnlp.metrics.load_metric("bleu")
    >>> result = metric.compute(
    ...     predictions=["A dog runs on the grass."], references=[["a dog runs on the grass", "a dog"]]
    ... )
    >>> round(result["bleu_4"], 6)
    1.0
"""

    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        """BLEU-1..4 of tokenised captions."""
        scores = corpus_bleu(predictions, references)
        return {f"bleu_{order}": score for order, score in enumerate(scores, start=1)}
