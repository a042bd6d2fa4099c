"""ROUGE-L exactly as COCO caption evaluation (pycocoevalcap) computes it, as an evaluate module."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate

from hfnlp.metrics.coco import prepare_captions, rouge_l

_CITATION = """
@inproceedings{lin2004rouge,
  title={ROUGE: A Package for Automatic Evaluation of Summaries},
  author={Lin, Chin-Yew},
  booktitle={Text Summarization Branches Out}, year={2004}
}
"""

_DESCRIPTION = """
ROUGE-L as pycocoevalcap's Rouge(): per image, the longest-common-subsequence F-measure with beta=1.2
built from the best precision and the best recall over its references, averaged over images.
Captions are tokenised as COCO does (see hfnlp.metrics.coco).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): one generated caption per image.
    references (`list` of `list` of `str`): the reference captions of each image (at least one).
    tokenize (`bool`, defaults to `True`): COCO-tokenise every caption first; `False` when the captions
        are already tokenised (tokens separated by single spaces).
Returns:
    rouge_l (`float` in [0, 1]).
Examples:
    >>> metric = hfnlp.metrics.load_metric("rouge_l")
    >>> metric.compute(predictions=["a dog runs"], references=[["a dog runs", "a cat sleeps"]])
    {'rouge_l': 1.0}
"""

_FEATURES = datasets.Features(
    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RougeL(evaluate.Metric):
    """COCO caption ROUGE-L (pycocoevalcap ``Rouge()``, beta 1.2)."""

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
        return {"rouge_l": rouge_l(*prepare_captions(predictions, references, tokenize))[0]}
