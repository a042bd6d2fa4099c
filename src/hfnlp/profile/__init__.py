"""Data profile → recipe: statistics of a labelled text data set, and the text-classification recipe they choose.

:func:`profile_text_data` reads the splits through the data layer (:func:`hfnlp.data.text.load_text_classification`,
so exactly the rows a run would train on) and measures what the defaults depend on: rows, class balance, script,
lengths, vocabulary, n-grams, duplicates and leakage between splits. :func:`recipe_from_profile` turns a profile
into a complete recipe whose every value comes from a stated rule over those statistics or from the literature,
never from tuning on one data set; :meth:`RecipeDraft.to_yaml` writes it with a comment naming why each value was
chosen. :func:`guess_data_section` finds the text and label columns of a file nobody described.
"""

from __future__ import annotations

from hfnlp.profile.candidates import candidate_recipes
from hfnlp.profile.columns import guess_data_section
from hfnlp.profile.recipe import RecipeDraft, recipe_from_profile
from hfnlp.profile.statistics import LengthStats, TextProfile, profile_text_data

__all__ = [
    "LengthStats",
    "RecipeDraft",
    "TextProfile",
    "candidate_recipes",
    "guess_data_section",
    "profile_text_data",
    "recipe_from_profile",
]
