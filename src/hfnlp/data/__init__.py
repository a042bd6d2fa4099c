"""Data loading per task: readers, validation, splits, embedded data sets."""
