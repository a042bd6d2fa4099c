"""A run's console when stderr is a log file: no progress-bar debris, no warning about pinned memory on a CPU."""

from __future__ import annotations

import io

import huggingface_hub.utils
import pytest
import transformers

from hfnlp.cli import main
from hfnlp.training.console import quiet_console, trainer_console_arguments


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_are_off_off_a_terminal_and_loading_bars_everywhere():
    assert quiet_console(io.StringIO()) is False
    assert not transformers.utils.logging.is_progress_bar_enabled()
    assert huggingface_hub.utils.are_progress_bars_disabled()
    assert trainer_console_arguments(None, io.StringIO())["disable_tqdm"] is True
    assert trainer_console_arguments(False, io.StringIO())["disable_tqdm"] is False  # the recipe's choice wins
    assert trainer_console_arguments(None, Terminal())["disable_tqdm"] is False
    huggingface_hub.utils.enable_progress_bars()  # as in a fresh process
    assert quiet_console(Terminal()) is True
    assert not transformers.utils.logging.is_progress_bar_enabled()  # "Loading weights" stays quiet
    assert not huggingface_hub.utils.are_progress_bars_disabled()  # downloads keep theirs on a terminal


@pytest.mark.slow
def test_a_training_logged_to_a_file_has_no_escape_codes_and_no_pin_memory_warning(make_recipe, capfd):
    quiet_console()  # what the CLI does first; pytest's captured stderr is a file, not a terminal
    recipe = make_recipe(rows=100, num_train_epochs=1, disable_tqdm=None)
    assert main(["train", str(recipe)]) == 0
    err = capfd.readouterr().err
    assert "\x1b[" not in err and "\r" not in err
    assert "pin_memory" not in err and "Loading weights" not in err and "Writing model shards" not in err
    assert "mtime may not be reliable" not in err and "Token indices sequence length" not in err
