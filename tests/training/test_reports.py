"""Plots render every label: a CJK font is picked (an installed one, else mplfonts' Noto Sans CJK SC), and its
absence is said once."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from hfnlp.training import reports
from hfnlp.training.reports import CJK_FONT_HINT, cjk_font, plot_confusion_matrix

LABELS = ["体育", "财经", "科技"]


def test_chinese_labels_render_without_missing_glyphs(tmp_path):
    assert cjk_font() is not None  # an installed one, else the one the mplfonts dependency ships
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion_matrix(np.array([[3, 1, 0], [0, 4, 0], [1, 0, 2]]), LABELS, tmp_path / "matrix.png")
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []


def test_without_a_cjk_font_the_hint_comes_once_instead_of_a_warning_per_glyph(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(reports, "cjk_font", lambda: None)
    reports._warn_no_cjk_font.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("a.png", "b.png"):
            plot_confusion_matrix(np.eye(3, dtype=int), LABELS, tmp_path / name)
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
    hints = [r for r in caplog.records if r.getMessage() == CJK_FONT_HINT and r.levelno == logging.WARNING]
    assert len(hints) == 1 and (tmp_path / "b.png").stat().st_size > 1000
