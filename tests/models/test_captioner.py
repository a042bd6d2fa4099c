"""ImageCaptioner: teacher forcing, encoder training modes, and generation through transformers' GenerationMixin
(greedy, beam search, sampling, logits processors, length limits), attention maps."""

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


def test_a_batch_of_mixed_lengths_gives_each_caption_what_it_gets_alone(tiny_model):
    """Teacher forcing skips the positions past each caption's end; the real positions must not notice."""
    lengths = [6, 2, 4, 6, 3]
    ids = torch.full((len(lengths), max(lengths)), PAD)
    for row, length in enumerate(lengths):
        ids[row, :length] = captions(1, length, seed=row)[0]
    labels = ids.masked_fill(ids == PAD, -100)
    batch = tiny_model(pixel_values=images(len(lengths)), input_ids=ids, labels=labels)
    losses = []
    for row, length in enumerate(lengths):
        alone = tiny_model(pixel_values=images(len(lengths))[row : row + 1], input_ids=ids[row : row + 1, :length])
        assert torch.allclose(batch.logits[row, : length - 1], alone.logits[0], atol=1e-5)
        assert torch.allclose(batch.attentions[row, : length - 1], alone.attentions[0], atol=1e-5)
        assert not batch.logits[row, length - 1 :].any()  # past the end: nothing computed
        losses.append(torch.nn.functional.cross_entropy(alone.logits[0], ids[row, 1:length], reduction="sum"))
    words = sum(length - 1 for length in lengths)
    coverage = ((1 - batch.attentions.sum(dim=1)) ** 2).mean()  # padded steps carry no attention
    expected = sum(losses) / words + tiny_model.config.doubly_stochastic_coefficient * coverage
    assert batch.loss.item() == pytest.approx(expected.item(), rel=1e-5)


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


def test_label_smoothing_from_the_recipe_smooths_the_models_own_loss_in_trainer(tmp_path):
    """Trainer's own label smoother would take the labels away from the model (losing the attention penalty) and
    compare unshifted targets with the shifted logits; the captioner smooths its words itself instead."""
    from transformers import TrainingArguments

    from hfnlp.tasks.image_captioning import CaptioningTrainer

    torch.manual_seed(0)
    smoothed = ImageCaptioner(tiny_config(label_smoothing=0.1)).eval()
    ids = captions(3, 6)
    inputs = {"pixel_values": images(3), "input_ids": ids, "labels": ids.clone()}
    args = TrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=0.1, report_to=[], use_cpu=True)
    loss = CaptioningTrainer(model=smoothed, args=args, evaluator=None).compute_loss(smoothed, dict(inputs))
    output = smoothed(**inputs)
    words = torch.nn.functional.cross_entropy(
        output.logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), label_smoothing=0.1
    )
    penalty = ((1 - output.attentions.sum(dim=1)) ** 2).mean()
    assert loss.item() == pytest.approx((words + penalty).item(), rel=1e-5)
    plain = torch.nn.functional.cross_entropy(output.logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    assert words.item() != pytest.approx(plain.item(), rel=1e-3)


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
        output_scores=True,
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
        prefix = torch.tensor([sequence[:position]])
        log_probs = tiny_model(pixel_values=pixels, input_ids=prefix, use_cache=True).logits[0, -1]
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
    with pytest.raises(ValueError, match="not_a_setting"):
        loaded.generate(pixel_values=pixels, not_a_setting=1)


# ---- transformers' generation: every standard setting is honoured, or refused by name ----


def caption_words(sequence: list[int]) -> list[int]:
    """The words of a generated sequence: after the start word, up to (without) the end word."""
    words = sequence[1:]
    return words[: words.index(EOS)] if EOS in words else words


def normalised_score(model: ImageCaptioner, pixels: torch.Tensor, sequence: list[int], length_penalty: float) -> float:
    """Log-probability of a generated sequence (start and padding words banned), recomputed by teacher forcing from
    scratch, divided by ``generated length ** length_penalty`` as beam search scores it."""
    generated = sequence[1 : sequence.index(EOS) + 1] if EOS in sequence else sequence[1:]
    ids = torch.tensor([[BOS, *generated, PAD]])
    log_probs = torch.log_softmax(model(pixel_values=pixels, input_ids=ids).logits[0], -1)
    log_probs[:, [BOS, PAD]] = float("-inf")
    total = sum(log_probs[position, word].item() for position, word in enumerate(generated))
    return total / len(generated) ** length_penalty


def repeats(sequence: list[int]) -> int:
    words = caption_words(sequence)
    return len(words) - len(set(words))


@pytest.mark.parametrize("num_beams", [2, 5])
def test_beam_scores_match_a_recomputation_so_the_state_follows_its_beam(tiny_model, num_beams):
    # A beam whose LSTM state came from another beam (wrong reordering) would be scored with the other's state.
    pixels = images(4, seed=5)
    output = tiny_model.generate(
        pixel_values=pixels, num_beams=num_beams, max_new_tokens=7, output_scores=True, return_dict_in_generate=True
    )
    for index in range(4):
        sequence = output.sequences[index].tolist()
        expected = normalised_score(tiny_model, pixels[index : index + 1], sequence, 1.0)
        assert output.sequences_scores[index].item() == pytest.approx(expected, abs=1e-4)


def test_beam_search_scores_at_least_as_well_as_greedy(tiny_model):
    pixels = images(4, seed=6)
    greedy = tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=6)
    beam = tiny_model.generate(
        pixel_values=pixels, num_beams=6, max_new_tokens=6, output_scores=True, return_dict_in_generate=True
    )
    for index in range(4):
        greedy_score = normalised_score(tiny_model, pixels[index : index + 1], greedy[index].tolist(), 1.0)
        assert beam.sequences_scores[index].item() >= greedy_score - 1e-5


def test_decoding_carries_the_lstm_state_instead_of_rereading_the_prefix(tiny_model, monkeypatch):
    steps = []
    step = tiny_model._step
    monkeypatch.setattr(tiny_model, "_step", lambda words, *args: steps.append(words.shape[0]) or step(words, *args))
    sequences = tiny_model.generate(pixel_values=images(2), num_beams=1, max_new_tokens=6, min_new_tokens=6)
    assert sequences.shape == (2, 7)
    assert steps == [2] * 6  # one decoder step per generated word, for both images at once
    steps.clear()
    tiny_model.generate(pixel_values=images(2), num_beams=3, max_new_tokens=6, min_new_tokens=6)
    assert len(steps) == 6


def test_sampling_is_reproducible_with_a_seed_and_follows_temperature_top_k_and_top_p(tiny_model):
    pixels = images(4, seed=8)
    greedy = tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=8)

    def sample(seed: int, **settings) -> torch.Tensor:
        torch.manual_seed(seed)
        return tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=8, do_sample=True, **settings)

    assert torch.equal(sample(1, temperature=2.0), sample(1, temperature=2.0))
    assert not torch.equal(sample(1, temperature=2.0), sample(2, temperature=2.0))
    hot = sample(1, temperature=2.0)
    assert hot.shape != greedy.shape or not torch.equal(hot, greedy)
    # keeping only the most likely word makes sampling greedy, whatever the temperature
    assert torch.equal(sample(3, temperature=2.0, top_k=1), greedy)
    assert torch.equal(sample(3, temperature=2.0, top_k=0, top_p=1e-6), greedy)


def test_num_return_sequences_gives_several_captions_per_image(tiny_model):
    pixels = images(2, seed=9)
    beams = tiny_model.generate(
        pixel_values=pixels,
        num_beams=4,
        num_return_sequences=3,
        max_new_tokens=5,
        output_scores=True,
        output_attentions=True,
    )
    assert beams.sequences.shape[0] == 6 and beams.attentions.shape[0] == 6
    for image in range(2):
        rows = beams.sequences[image * 3 : (image + 1) * 3].tolist()
        assert len({tuple(row) for row in rows}) == 3  # three different captions, best first
        scores = beams.sequences_scores[image * 3 : (image + 1) * 3].tolist()
        assert scores == sorted(scores, reverse=True)
    torch.manual_seed(0)
    samples = tiny_model.generate(pixel_values=pixels, num_beams=1, do_sample=True, num_return_sequences=5)
    assert samples.shape[0] == 10


def test_no_repeat_ngram_size_and_repetition_penalty_stop_repeated_words(tiny_model):
    pixels = images(2, seed=1)
    greedy = tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=8)
    assert all(repeats(row) > 0 for row in greedy.tolist())  # this model repeats itself
    no_repeat = tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=8, no_repeat_ngram_size=1)
    assert all(repeats(row) == 0 for row in no_repeat.tolist())
    beam_no_repeat = tiny_model.generate(pixel_values=pixels, num_beams=3, max_new_tokens=8, no_repeat_ngram_size=1)
    assert all(repeats(row) == 0 for row in beam_no_repeat.tolist())
    penalised = tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=8, repetition_penalty=5.0)
    assert sum(map(repeats, penalised.tolist())) < sum(map(repeats, greedy.tolist()))


def test_max_and_min_new_tokens_bound_the_caption_length(tiny_model):
    pixels = images(3, seed=2)
    for num_beams in (1, 3):
        assert tiny_model.generate(pixel_values=pixels, num_beams=num_beams, max_new_tokens=3).shape[1] <= 4
    with torch.no_grad():
        tiny_model.output.bias[EOS] += 20.0  # the end word first, unless forbidden
    assert tiny_model.generate(pixel_values=pixels, num_beams=1, max_new_tokens=6)[:, 1].eq(EOS).all()
    for num_beams in (1, 3):
        sequences = tiny_model.generate(pixel_values=pixels, num_beams=num_beams, max_new_tokens=10, min_new_tokens=4)
        for row in sequences.tolist():
            assert row.index(EOS) == 5  # four words, then the end word as soon as it is allowed


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"penalty_alpha": 0.6, "top_k": 4}, "penalty_alpha"),
        ({"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0}, "num_beam_groups"),
        ({"use_cache": False}, "use_cache"),
        ({"cache_implementation": "static"}, "cache_implementation"),
        ({"output_hidden_states": True, "return_dict_in_generate": True}, "output_hidden_states"),
        ({"force_words_ids": [[5]]}, "force_words_ids"),
        ({"num_beems": 3}, "num_beems"),
    ],
)
def test_settings_the_captioner_cannot_honour_are_refused_by_name(tiny_model, settings, named):
    with pytest.raises(ValueError, match=named):
        tiny_model.generate(pixel_values=images(1), max_new_tokens=3, **settings)
