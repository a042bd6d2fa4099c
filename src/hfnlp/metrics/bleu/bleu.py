"""Corpus-level BLEU-1..4 as COCO caption evaluation (pycocoevalcap) computes it: an evaluate module."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate

from hfnlp.metrics.coco import corpus_bleu, prepare_captions

_CITATION = """
@inproceedings{papineni2002bleu,
  title={BLEU: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={ACL}, year={2002}
}
"""

_DESCRIPTION = """
Corpus-level BLEU-1..4 as pycocoevalcap's Bleu(4): clipped n-gram counts pooled over all images,
cumulative geometric means of the 1..n-gram precisions, brevity penalty against the reference length
closest to each prediction ("closest" option), pycocoevalcap's 1e-15 / 1e-9 smoothing constants.
Captions are tokenised as COCO does (pure-Python stand-in for PTBTokenizer, see hfnlp.metrics.coco).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): one generated caption per image.
    references (`list` of `list` of `str`): the reference captions of each image (at least one).
    tokenize (`bool`, defaults to `True`): COCO-tokenise every caption first; `False` when the captions
        are already tokenised (tokens separated by spaces).
Returns:
    bleu_1, bleu_2, bleu_3, bleu_4 (`float` in [0, 1]).
Examples:
    >>> metric = hfnlp.metrics.load_metric("bleu")
    >>> result = metric.compute(
    ...     predictions=["A dog runs on the grass."], references=[["a dog runs on the grass", "a dog"]]
    ... )
    >>> round(result["bleu_4"], 6)
    1.0
"""

_FEATURES = datasets.Features(
    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Bleu(evaluate.Metric):
    """COCO caption BLEU-1..4 (pycocoevalcap ``Bleu(4)``, "closest" reference length)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES,
            codebase_urls=["https://github.com/salaniz/pycocoevalcap"],
        )

    def _compute(
        self, predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
    ) -> dict[str, float]:
        scores = corpus_bleu(*prepare_captions(predictions, references, tokenize))
        return {f"bleu_{order}": score for order, score in enumerate(scores, start=1)}
