"""Carving the ``validation`` / ``test`` splits a source does not define out of ``train``.

:func:`carve_missing_splits` takes both missing splits together, stratified by the label column, with a fixed
seed; :meth:`hfnlp.data.reading.DataSourceConfig.carve` calls it with a recipe's ratios.
"""

from __future__ import annotations

from collections import Counter

from datasets import DatasetDict

from hfnlp.errors import DataError


def carve_missing_splits(
    splits: DatasetDict,
    *,
    validation_ratio: float,
    test_ratio: float,
    seed: int,
    stratify_by_column: str | None = "label",
) -> DatasetDict:
    """Carve the missing ``validation`` / ``test`` splits out of ``train``, stratified, with a fixed seed.

    Both are carved together (so an 80/10/10 split of one file takes 20% once, then halves it), which keeps
    the result independent of which split is missing.
    """
    missing = {
        name: ratio for name, ratio in (("validation", validation_ratio), ("test", test_ratio)) if name not in splits
    }
    if not missing:
        return splits
    total = sum(missing.values())
    if not 0 < total < 1:
        raise DataError(f"split ratios for {', '.join(missing)} must add up to between 0 and 1, got {total}")
    train = splits["train"]
    stratify = stratify_by_column if stratify_by_column in train.column_names else None
    if stratify:
        _check_stratifiable(train[stratify], train.features[stratify])
    try:
        held_out = train.train_test_split(test_size=total, seed=seed, stratify_by_column=stratify)
        result = DatasetDict({**splits, "train": held_out["train"]})
        if len(missing) == 1:
            result[next(iter(missing))] = held_out["test"]
            return result
        second = held_out["test"].train_test_split(test_size=test_ratio / total, seed=seed, stratify_by_column=stratify)
    except ValueError as error:  # datasets' own (sklearn-style) refusal: too few rows for the sizes asked
        raise DataError(
            f"train split: {len(train)} rows are too few to carve {' and '.join(missing)} splits of "
            f"{', '.join(f'{ratio:g}' for ratio in missing.values())} of them"
            + (" with a row of every class in each" if stratify else "")
            + f" ({error}); add rows, raise data.validation_ratio / data.test_ratio, or give "
            + " and ".join(f"data.{name}_file" for name in missing)
        ) from error
    result["validation"], result["test"] = second["train"], second["test"]
    return result


def _check_stratifiable(labels: list, feature: object) -> None:
    counts = Counter(labels)
    rare = [label for label, count in counts.items() if count < 2]
    if rare:
        names = [feature.int2str(label) if hasattr(feature, "int2str") else str(label) for label in rare]
        raise DataError(
            f"label(s) {', '.join(map(str, names))} have fewer than 2 rows in train, too few to carve stratified "
            "validation/test splits: add data, or give validation_file and test_file"
        )
