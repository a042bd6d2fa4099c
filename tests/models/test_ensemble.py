"""The ensemble family: the weighted mean of its members' probabilities, saved and loaded as one folder."""

from __future__ import annotations

import pytest
import torch

from hfnlp.errors import HfnlpError
from hfnlp.models import FAMILIES
from hfnlp.models.ensemble import EnsembleConfig, EnsembleForSequenceClassification
from tests.models.test_text_models import WIDE_MLP, build, load_with_remote_code, right_pad

INPUT_IDS = right_pad([[5, 9, 3, 12, 7], [4, 8], [30], [3, 3, 8, 21, 6, 11]])


def ensemble_of(members: list, weights: list[float]) -> EnsembleForSequenceClassification:
    return EnsembleForSequenceClassification.from_members(members, weights)


@pytest.fixture(scope="module")
def members() -> list:
    return [build("fasttext", WIDE_MLP, seed=1), build("text_cnn", {"filter_sizes": [2, 3]}, seed=2)]


def test_logits_are_the_log_of_the_weighted_mean_of_member_probabilities(members) -> None:
    ensemble = ensemble_of(members, [0.3, 0.9])
    with torch.no_grad():
        probabilities = [torch.softmax(member(INPUT_IDS).logits, dim=-1) for member in members]
        output = ensemble(INPUT_IDS, labels=torch.tensor([0, 1, 2, 0]))
    expected = 0.25 * probabilities[0] + 0.75 * probabilities[1]  # weights normalised to sum to one
    torch.testing.assert_close(torch.softmax(output.logits, dim=-1), expected)
    torch.testing.assert_close(output.loss, torch.nn.functional.nll_loss(expected.log(), torch.tensor([0, 1, 2, 0])))


def test_a_zero_weight_member_leaves_the_other_alone(members) -> None:
    ensemble = ensemble_of(members, [1.0, 0.0])
    with torch.no_grad():
        torch.testing.assert_close(
            torch.softmax(ensemble(INPUT_IDS).logits, -1), torch.softmax(members[0](INPUT_IDS).logits, -1)
        )


@pytest.mark.parametrize(
    ("members_types", "weights", "message"),
    [
        (["hfnlp_fasttext"], [1.0, 1.0], "1 members but 2 member_weights"),
        (["hfnlp_fasttext", "hfnlp_text_cnn"], [0.0, 0.0], "not all zero"),
        (["hfnlp_fasttext", "hfnlp_text_cnn"], [-1.0, 2.0], "non-negative"),
        (["bert"], [1.0], "must be of types"),
    ],
)
def test_invalid_configs_are_refused(members_types, weights, message) -> None:
    with pytest.raises(Exception, match=message):
        EnsembleConfig(members=[{"model_type": kind} for kind in members_types], member_weights=weights)


def test_a_recipe_cannot_train_an_ensemble(members) -> None:
    config = ensemble_of(members, [0.5, 0.5]).config
    with pytest.raises(HfnlpError, match="built from trained models"):
        FAMILIES["ensemble"].build_model(config)


@pytest.mark.slow
def test_saved_ensemble_loads_with_and_without_hfnlp(members, tmp_path) -> None:
    ensemble = ensemble_of(members, [0.6, 0.4])
    ensemble.save_pretrained(tmp_path / "ensemble")
    with torch.no_grad():
        expected = ensemble(INPUT_IDS).logits
    reloaded = EnsembleForSequenceClassification.from_pretrained(tmp_path / "ensemble").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(INPUT_IDS).logits, expected)

    torch.save(INPUT_IDS, tmp_path / "input_ids.pt")
    load_with_remote_code(tmp_path, [tmp_path / "ensemble"])
    torch.testing.assert_close(torch.load(tmp_path / "ensemble" / "remote_logits.pt"), expected)
