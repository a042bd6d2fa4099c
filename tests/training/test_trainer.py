"""HfnlpTrainer: single-length batches from input_ids, and gradient clipping that writes only when it clips."""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerFast, TrainingArguments

from hfnlp.models.text_rnn import TextRNNConfig, TextRNNForSequenceClassification
from hfnlp.tokenization.text import TextTokenizerConfig, train_tokenizer
from hfnlp.training.batching import ArrowRows, TokenIdsCollator
from hfnlp.training.trainer import HfnlpTrainer


@pytest.mark.parametrize("arrow", [False, True])  # DataCollatorWithPadding on row dicts / TokenIdsCollator on Arrow
def test_trainer_builds_single_length_batches_from_input_ids(tmp_path, arrow) -> None:
    texts = ["好" * n for n in (2, 3, 4, 5) for _ in range(12)]
    tokenizer: PreTrainedTokenizerFast = train_tokenizer(TextTokenizerConfig(level="char", max_length=16), texts)
    encoded = Dataset.from_dict({"text": texts, "label": [len(text) % 2 for text in texts]}).map(
        lambda batch: tokenizer(batch["text"]), batched=True, remove_columns=["text"]
    )
    model = TextRNNForSequenceClassification(TextRNNConfig(vocab_size=len(tokenizer), num_labels=2))
    args = TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=6, train_sampling_strategy="group_by_length"
    )
    collator = TokenIdsCollator(tokenizer.pad_token_id) if arrow else DataCollatorWithPadding(tokenizer)
    trainer = HfnlpTrainer(model=model, args=args, train_dataset=encoded, data_collator=collator)
    loader = trainer.get_train_dataloader()
    assert isinstance(loader.dataset, ArrowRows) is arrow
    batches = list(loader)
    assert len(batches) == 8 and all(bool(batch["attention_mask"].all()) for batch in batches)
    assert sorted(batch["input_ids"].shape[1] for batch in batches) == [2, 2, 3, 3, 4, 4, 5, 5]
    # Each text's label came with it: a text's label is its length's parity.
    assert all(batch["labels"].eq(batch["input_ids"].shape[1] % 2).all() for batch in batches)


@pytest.mark.parametrize(("scale", "clipped"), [(1e-3, False), (1e3, True)])
def test_clipping_gives_torch_s_gradients_and_writes_them_only_when_over_the_limit(tmp_path, scale, clipped) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4, sparse=True), torch.nn.Linear(4, 3))
    args = TrainingArguments(output_dir=str(tmp_path), max_grad_norm=1.0, report_to=[])
    trainer = HfnlpTrainer(model=model, args=args)
    (model(torch.tensor([1, 2, 2, 7])).sum() * scale).backward()
    reference = copy.deepcopy(model)
    for param, copied in zip(model.parameters(), reference.parameters(), strict=True):
        copied.grad = param.grad.clone()
    expected_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
    versions = [param.grad._version for param in model.parameters()]
    norm = trainer._clip_grad_norm(model)
    assert torch.equal(norm, expected_norm) and bool(norm > 1.0) is clipped
    for param, expected in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(param.grad.to_dense(), expected.grad.to_dense(), atol=0, rtol=0)
    # Under the limit, no pass over the gradients (torch's own multiplies them all by 1).
    assert ([param.grad._version for param in model.parameters()] != versions) is clipped
