"""Split naming and carving: every task ends with ``train`` / ``validation`` / ``test``."""

from __future__ import annotations

from collections import Counter

from datasets import DatasetDict

from hfnlp.errors import DataError

SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "val": "validation",
    "test": "test",
}


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
    held_out = train.train_test_split(test_size=total, seed=seed, stratify_by_column=stratify)
    result = DatasetDict({**splits, "train": held_out["train"]})
    if len(missing) == 1:
        result[next(iter(missing))] = held_out["test"]
        return result
    second = held_out["test"].train_test_split(test_size=test_ratio / total, seed=seed, stratify_by_column=stratify)
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
