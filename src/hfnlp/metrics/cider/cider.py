"""CIDEr-D exactly as COCO caption evaluation (pycocoevalcap) computes it, as an evaluate module."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate

from hfnlp.metrics.coco import cider_d, prepare_captions

_CITATION = """
@inproceedings{vedantam2015cider,
  title={CIDEr: Consensus-based Image Description Evaluation},
  author={Vedantam, Ramakrishna and Zitnick, C. Lawrence and Parikh, Devi},
  booktitle={CVPR}, year={2015}
}
"""

_DESCRIPTION = """
CIDEr-D as pycocoevalcap's Cider(): tf-idf weighted 1..4-gram cosine similarity with clipping and a
Gaussian length penalty (sigma=6), averaged over references and n-gram orders, times 10. The document
frequencies come from the references of the evaluated set, so the score depends on the whole set
(a single image always scores 0). Captions are tokenised as COCO does (see hfnlp.metrics.coco).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): one generated caption per image.
    references (`list` of `list` of `str`): the reference captions of each image (at least one).
    tokenize (`bool`, defaults to `True`): COCO-tokenise every caption first; `False` when the captions
        are already tokenised (tokens separated by spaces).
Returns:
    cider (`float` in [0, 10]).
Examples:
    >>> metric = hfnlp.metrics.load_metric("cider")
    >>> metric.compute(predictions=["a dog runs", "a red car"], references=[["a dog runs"], ["a blue car"]])
    {'cider': 4.375000000000001}
"""

_FEATURES = datasets.Features(
    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Cider(evaluate.Metric):
    """COCO caption CIDEr-D (pycocoevalcap ``Cider()``: sigma 6, clipping, x10)."""

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
        return {"cider": cider_d(*prepare_captions(predictions, references, tokenize))[0]}
