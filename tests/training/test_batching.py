"""Length-bucketed batches: every row once per epoch, almost every batch of a single length, reproducible."""

from __future__ import annotations

import torch
from datasets import Dataset, Features, List, Value
from transformers import DataCollatorWithPadding

from hfnlp.tokenization.text import TextTokenizerConfig, train_tokenizer
from hfnlp.training.batching import ArrowRows, LengthBucketSampler, TokenIdsCollator


def batches_of(order: list[int], size: int) -> list[list[int]]:
    return [order[start : start + size] for start in range(0, len(order), size)]


def test_sampler_covers_every_row_once_in_batches_of_one_length() -> None:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 30, (1000,), generator=generator).tolist()
    order = list(LengthBucketSampler(lengths, batch_size=16, seed=0))
    assert sorted(order) == list(range(1000))
    batches = batches_of(order, 16)
    mixed = [batch for batch in batches if len({lengths[i] for i in batch}) > 1]
    # Sorted by length then cut: only a batch that straddles two lengths mixes them.
    assert len(mixed) <= len(set(lengths)) - 1
    assert len(batches[-1]) == 1000 % 16 and all(len(batch) == 16 for batch in batches[:-1])
    # Batches come in random order, not sorted by length.
    first_lengths = [lengths[batch[0]] for batch in batches[:-1]]
    assert first_lengths != sorted(first_lengths)


def test_sampler_order_depends_only_on_seed_and_epoch() -> None:
    lengths = [3, 5, 5, 3, 8, 8, 8, 3, 5, 1] * 10
    sampler = LengthBucketSampler(lengths, batch_size=4, seed=7)
    first = list(sampler)
    torch.manual_seed(123)  # the global generator (dropout) drifts apart between processes: no effect here
    assert list(sampler) == first == list(LengthBucketSampler(lengths, batch_size=4, seed=7))
    sampler.set_epoch(1)  # Trainer calls this each epoch, also when resuming
    second = list(sampler)
    assert second != first and sorted(second) == sorted(first)
    assert list(LengthBucketSampler(lengths, batch_size=4, seed=8)) != first
    assert list(LengthBucketSampler([], batch_size=4, seed=0)) == []


def test_token_ids_collator_gives_what_datacollatorwithpadding_gives() -> None:
    """The text task's collator pads hfnlp's tokenizer rows as transformers' would, labels included."""
    tokenizer = train_tokenizer(TextTokenizerConfig(level="word", max_length=16), ["a b c d e", "b c", "a"] * 5)
    texts = ["a b c", "d", "a b c d e a b", "e e"]
    rows = [{"input_ids": tokenizer(text)["input_ids"], "label": label} for label, text in enumerate(texts)]
    reference = DataCollatorWithPadding(tokenizer)(
        [{**row, "attention_mask": [1] * len(row["input_ids"])} for row in rows]
    )
    ours = TokenIdsCollator(tokenizer.pad_token_id)(rows)
    assert set(ours) == set(reference) == {"input_ids", "attention_mask", "labels"}
    assert all(torch.equal(ours[key], reference[key]) for key in ours)
    assert set(TokenIdsCollator(tokenizer.pad_token_id)([{"input_ids": [3, 4]}])) == {"input_ids", "attention_mask"}


def test_arrow_rows_give_the_collator_the_batch_row_dicts_give() -> None:
    """ArrowRows hands the collator a table of the rows taken by index; the batch is the row dicts' batch, also for a
    select()ed split (an indices mapping) and for ids stored as int32."""
    rows = {"input_ids": [[5, 6, 7], [8], [9, 10], [11, 12, 13, 14]], "label": [1, 0, 1, 0]}
    split = Dataset.from_dict(rows, features=Features({"input_ids": List(Value("int32")), "label": Value("int64")}))
    split = split.select([3, 1, 2, 0])
    collator, order = TokenIdsCollator(pad_token_id=0), [2, 0, 3]
    from_arrow = collator(ArrowRows(split).__getitems__(order))
    from_rows = collator([split[i] for i in order])
    assert set(from_arrow) == set(from_rows) == {"input_ids", "attention_mask", "labels"}
    assert all(torch.equal(from_arrow[key], from_rows[key]) for key in from_rows)
    assert from_arrow["input_ids"].tolist() == [[9, 10, 0, 0], [11, 12, 13, 14], [5, 6, 7, 0]]
    assert len(ArrowRows(split)) == 4
