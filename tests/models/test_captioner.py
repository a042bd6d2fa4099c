"""ImageCaptioner: teacher forcing, encoder training modes, greedy and beam-search generation, attention maps."""

from __future__ import annotations

import itertools

import pytest
import torch

from hfnlp.models.captioner import ImageCaptioner

from .conftest import VOCAB, tiny_config

BOS, EOS, PAD = 2, 3, 0


def captions(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=generator)
    ids[:, 0] = BOS
    ids[:, -1] = EOS
    return ids


def images(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_forward_shapes_loss_and_padding_ignored(tiny_model):
    ids = captions(2, 6)
    output = tiny_model(pixel_values=images(2), input_ids=ids, labels=ids)
    assert output.logits.shape == (2, 5, VOCAB)
    assert output.attentions.shape[:2] == (2, 5)
    assert torch.allclose(output.attentions.sum(-1), torch.ones(2, 5), atol=1e-5)
    # appending padding (label -100) to a caption changes neither its logits nor its loss
    padded = torch.cat([ids, torch.full((2, 3), PAD)], dim=1)
    labels = padded.masked_fill(padded == PAD, -100)
    longer = tiny_model(pixel_values=images(2), input_ids=padded, labels=labels)
    assert torch.allclose(longer.logits[:, :5], output.logits, atol=1e-5)
    assert longer.loss.item() == pytest.approx(output.loss.item(), rel=1e-5)


def test_doubly_stochastic_regulariser_adds_to_the_loss():
    torch.manual_seed(0)
    with_penalty = ImageCaptioner(tiny_config(doubly_stochastic_coefficient=1.0)).eval()
    without = ImageCaptioner(tiny_config(doubly_stochastic_coefficient=0.0)).eval()
    without.load_state_dict(with_penalty.state_dict())
    ids = captions(2, 5)
    first = with_penalty(pixel_values=images(2), input_ids=ids, labels=ids)
    second = without(pixel_values=images(2), input_ids=ids, labels=ids)
    assert torch.equal(first.logits, second.logits)
    steps = first.attentions.sum(dim=1)  # all 4 steps are real words
    expected = ((1 - steps) ** 2).mean()
    assert first.loss.item() - second.loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_cached_features_give_the_same_result_as_pixels(tiny_model):
    ids = captions(3, 5)
    maps = tiny_model.encode_images(images(3))
    from_pixels = tiny_model(pixel_values=images(3), input_ids=ids)
    from_maps = tiny_model(encoder_features=maps, input_ids=ids)
    from_regions = tiny_model(encoder_features=maps.flatten(2).transpose(1, 2).half(), input_ids=ids)
    assert torch.allclose(from_pixels.logits, from_maps.logits, atol=1e-5)
    assert torch.allclose(from_pixels.logits, from_regions.logits, atol=1e-2)


def test_encoder_training_modes():
    frozen = ImageCaptioner(tiny_config(encoder_training="frozen"))
    assert frozen.encoder_is_frozen
    frozen.train()
    assert frozen.training and not frozen.encoder.training  # batch-norm statistics never move
    assert all(p.requires_grad for name, p in frozen.named_parameters() if not name.startswith("encoder."))

    partial = ImageCaptioner(tiny_config(encoder_training="partial", encoder_trainable_stages=1))
    last = partial.encoder_stages()[-1]
    trainable = {id(p) for p in partial.encoder.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in last.parameters()}
    partial.train()
    assert partial.encoder.training

    full = ImageCaptioner(tiny_config(encoder_training="full"))
    assert all(p.requires_grad for p in full.encoder.parameters())


def test_frozen_encoder_stays_frozen_after_loading(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    loaded = ImageCaptioner.from_pretrained(tmp_path)
    assert loaded.encoder_is_frozen


def test_attention_false_is_the_no_attention_baseline():
    model = ImageCaptioner(tiny_config(attention=False)).eval()
    assert model.attention is None and model.lstm.input_size == model.config.embedding_dim
    ids = captions(2, 5)
    assert model(pixel_values=images(2), input_ids=ids, labels=ids).attentions is None
    output = model.generate(pixel_values=images(2), num_beams=2, max_new_tokens=4, output_attentions=True)
    assert output.attentions is None and output.sequences[:, 0].eq(BOS).all()


def sequence_scores(
    model: ImageCaptioner, pixels: torch.Tensor, candidates: list[list[int]], length_penalty: float
) -> list[float]:
    """Normalised log-probability of each candidate as generate() scores it (start and padding words banned)."""
    ids = torch.tensor([[BOS, *c, *[PAD] * (3 - len(c))] for c in candidates])
    logits = model(pixel_values=pixels.expand(len(candidates), -1, -1, -1), input_ids=ids).logits
    log_probs = torch.log_softmax(logits, -1)
    log_probs[..., [BOS, PAD]] = float("-inf")
    return [
        sum(log_probs[row, position, word].item() for position, word in enumerate(c)) / len(c) ** length_penalty
        for row, c in enumerate(candidates)
    ]


@pytest.mark.parametrize("length_penalty", [1.0, 0.3])
def test_beam_search_with_enough_beams_finds_the_best_caption(tiny_model, length_penalty):
    pixels = images(1, seed=3)
    words = [w for w in range(VOCAB) if w not in (BOS, PAD, EOS)]
    candidates = [[EOS]] + [[w, EOS] for w in words] + [list(pair) for pair in itertools.product(words, repeat=2)]
    scored = sequence_scores(tiny_model, pixels, candidates, length_penalty)
    scores = dict(zip(map(tuple, candidates), scored, strict=True))
    best = max(scores, key=scores.get)
    output = tiny_model.generate(
        pixel_values=pixels,
        num_beams=100,
        max_new_tokens=2,
        length_penalty=length_penalty,
        return_dict_in_generate=True,
    )
    found = [w for w in output.sequences[0, 1:].tolist() if w != PAD]
    assert tuple(found) == best
    assert output.sequences_scores[0].item() == pytest.approx(scores[best], abs=1e-4)


def test_greedy_picks_the_most_likely_word_each_step(tiny_model):
    pixels = images(1, seed=1)
    sequence = tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=5)[0].tolist()
    for position in range(1, len(sequence)):
        if sequence[position - 1] == EOS:
            assert sequence[position] == PAD
            continue
        prefix = torch.tensor([sequence[:position] + [PAD]])
        log_probs = tiny_model(pixel_values=pixels, input_ids=prefix).logits[0, -1]
        log_probs[[BOS, PAD]] = float("-inf")
        assert sequence[position] == log_probs.argmax().item()


def test_batched_beam_search_matches_one_image_at_a_time(tiny_model):
    pixels = images(4, seed=7)
    batched = tiny_model.generate(pixel_values=pixels, num_beams=3, max_new_tokens=6)
    for index in range(4):
        single = tiny_model.generate(pixel_values=pixels[index : index + 1], num_beams=3, max_new_tokens=6)[0]
        assert batched[index, : single.shape[0]].tolist() == single.tolist()
        assert batched[index, single.shape[0] :].eq(PAD).all()


def test_generate_returns_one_attention_map_per_word(tiny_model):
    pixels = images(2, seed=2)
    output = tiny_model.generate(pixel_values=pixels, num_beams=2, max_new_tokens=5, output_attentions=True)
    grid = tuple(tiny_model.encode_images(pixels).shape[2:])
    assert output.attentions.shape == (2, output.sequences.shape[1] - 1, *grid)
    for row, sequence in zip(output.attentions, output.sequences, strict=True):
        real = sequence[1:] != PAD
        assert torch.allclose(row[real].sum(dim=(1, 2)), torch.ones(int(real.sum())), atol=1e-5)
        assert row[~real].eq(0).all()


def test_generation_settings_come_from_the_saved_generation_config(tmp_path, tiny_model):
    tiny_model.generation_config.update(num_beams=3, max_length=4)
    tiny_model.save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").exists()
    loaded = ImageCaptioner.from_pretrained(tmp_path).eval()
    assert loaded.generation_config.num_beams == 3
    pixels = images(2, seed=4)
    assert torch.equal(loaded.generate(pixel_values=pixels), tiny_model.generate(pixel_values=pixels))
    assert loaded.generate(pixel_values=pixels).shape[1] <= 4
    with pytest.raises(ValueError, match="unsupported"):
        loaded.generate(pixel_values=pixels, not_a_setting=1)
