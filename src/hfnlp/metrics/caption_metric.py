"""What the COCO caption metric modules (``bleu``, ``cider``, ``rouge_l``) share: one :class:`evaluate.Metric` base.

Each module only names its citation, description, result keys and example, and maps tokenised captions to
scores with a scorer from :mod:`hfnlp.metrics.coco`; the input features, the ``tokenize`` option, the input
checks and the shared part of the inputs description live here once.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import datasets
import evaluate

from hfnlp.metrics.coco import prepare_captions

_FEATURES = datasets.Features(
    {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
)

_ARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): one generated caption per image.
    references (`list` of `list` of `str`): the reference captions of each image (at least one).
    tokenize (`bool`, defaults to `True`): COCO-tokenise every caption first; `False` when the captions
        are already tokenised (tokens separated by single spaces).
"""


# ABCMeta makes this base abstract, which is what keeps `evaluate.load` from taking it for the module's metric:
# it picks the first non-abstract `EvaluationModule` subclass it finds in the module's namespace.
class CaptionMetric(evaluate.Metric, metaclass=ABCMeta):
    """An ``evaluate`` metric over generated captions and their references, COCO-tokenised by default.

    Subclasses set the class attributes below and implement :meth:`score`; the class name gives the metric id
    (``RougeL`` -> ``rouge_l``).
    """

    citation_bibtex: ClassVar[str]
    metric_description: ClassVar[str]
    returns: ClassVar[str]
    """The ``Returns:`` section of the inputs description: the result keys and their ranges."""
    examples: ClassVar[str]
    """The ``Examples:`` section of the inputs description (doctest lines)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.metric_description,
            citation=self.citation_bibtex,
            inputs_description=f"{_ARGS_DESCRIPTION}Returns:\n    {self.returns}\nExamples:\n{self.examples}",
            features=_FEATURES,
            codebase_urls=["https://github.com/salaniz/pycocoevalcap"],
        )

    def _compute(
        self, predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
    ) -> dict[str, float]:
        return self.score(*prepare_captions(predictions, references, tokenize))

    @abstractmethod
    def score(self, predictions: list[str], references: list[list[str]]) -> dict[str, float]:
        """The scores of tokenised, checked captions (tokens separated by single spaces)."""
