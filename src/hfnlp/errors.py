"""Errors that hfnlp raises for problems a user can fix (bad recipes, bad data)."""

from __future__ import annotations


class HfnlpError(Exception):
    """Base class: the message alone tells the user what is wrong and where."""


class RecipeError(HfnlpError):
    """A recipe key, value or type is wrong."""


class DataError(HfnlpError):
    """Input data is missing, malformed or inconsistent with the recipe."""
