"""LazyAdamW: AdamW's update for dense gradients and, for sparse ones, the same update on the rows used."""

from __future__ import annotations

import io

import pytest
import torch

from hfnlp.training.optim import LazyAdamW, uses_sparse_gradients


def train(embedding: torch.nn.Embedding, optimizer: torch.optim.Optimizer, batches: list[torch.Tensor]) -> None:
    for batch in batches:
        optimizer.zero_grad()
        embedding(batch).pow(2).sum().backward()
        optimizer.step()


def test_dense_gradients_get_exactly_fused_adamw() -> None:
    torch.manual_seed(0)
    reference, lazy = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    lazy.load_state_dict(reference.state_dict())
    optimizers = [
        torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.1, fused=True),
        LazyAdamW(lazy.parameters(), lr=0.01, weight_decay=0.1),
    ]
    for _ in range(5):
        inputs = torch.randn(4, 5)
        for model, optimizer in zip((reference, lazy), optimizers, strict=True):
            optimizer.zero_grad()
            model(inputs).pow(2).sum().backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(reference.parameters(), lazy.parameters(), strict=True))


@pytest.mark.parametrize("weight_decay", [0.1, 0.0])  # rows copied out and back / updated in place by index_add_
def test_sparse_gradients_update_only_the_rows_used_as_adamw_would(weight_decay: float) -> None:
    torch.manual_seed(0)
    dense, sparse = torch.nn.Embedding(8, 3), torch.nn.Embedding(8, 3, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    assert uses_sparse_gradients(sparse) and not uses_sparse_gradients(dense)
    every_row = [torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 2, 2])] * 4  # repeated ids: summed gradients
    train(dense, torch.optim.AdamW(dense.parameters(), lr=0.01, weight_decay=weight_decay), every_row)
    optimizer = LazyAdamW(sparse.parameters(), lr=0.01, weight_decay=weight_decay)
    train(sparse, optimizer, every_row)
    torch.testing.assert_close(sparse.weight, dense.weight, atol=1e-7, rtol=0)

    before = sparse.weight.detach().clone()
    train(sparse, optimizer, [torch.tensor([1, 5, 5])])
    changed = (sparse.weight != before).any(dim=1)
    assert changed.tolist() == [False, True, False, False, False, True, False, False]


def test_state_round_trips_through_a_checkpoint() -> None:
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(8, 3, sparse=True)
    optimizer = LazyAdamW(embedding.parameters(), lr=0.01)
    train(embedding, optimizer, [torch.tensor([1, 2])])
    resumed_embedding = torch.nn.Embedding(8, 3, sparse=True)
    resumed_embedding.load_state_dict(embedding.state_dict())
    resumed = LazyAdamW(resumed_embedding.parameters(), lr=0.01)
    checkpoint = io.BytesIO()  # through bytes, as Trainer's optimizer.pt: no tensor shared with the running optimizer
    torch.save(optimizer.state_dict(), checkpoint)
    checkpoint.seek(0)
    resumed.load_state_dict(torch.load(checkpoint, weights_only=True))
    batches = [torch.tensor([2, 3]), torch.tensor([1, 7])]
    train(embedding, optimizer, batches)
    train(resumed_embedding, resumed, batches)
    assert torch.equal(embedding.weight, resumed_embedding.weight)


def test_rowwise_adagrad_moves_only_the_rows_used_by_their_gradient_over_one_accumulator_each() -> None:
    """Row-wise Adagrad (sparse_rule="rowwise_adagrad"): a row's accumulator is the sum over steps of its gradient's
    mean square, the row moves by lr * sparse_lr_ratio * gradient / sqrt(accumulator); dense weights keep AdamW."""
    torch.manual_seed(0)
    embedding, head = torch.nn.Embedding(6, 4, sparse=True), torch.nn.Linear(4, 1)
    reference_head = torch.nn.Linear(4, 1)
    reference_head.load_state_dict(head.state_dict())
    optimizer = LazyAdamW(
        [*embedding.parameters(), *head.parameters()], lr=0.01, sparse_rule="rowwise_adagrad", sparse_lr_ratio=5.0
    )
    reference = torch.optim.AdamW(reference_head.parameters(), lr=0.01, weight_decay=0.0, fused=True)
    weights, accumulators = embedding.weight.detach().clone(), torch.zeros(6)
    for ids in (torch.tensor([1, 3, 3]), torch.tensor([3, 4])):
        optimizer.zero_grad()
        head(embedding(ids)).sum().backward()
        gradient = embedding.weight.grad.to_dense()
        reference.zero_grad()
        reference_head(embedding(ids).detach()).sum().backward()
        optimizer.step()
        reference.step()
        used = gradient.abs().sum(dim=1) > 0
        accumulators[used] += gradient[used].pow(2).mean(dim=1)
        weights[used] -= 0.05 * gradient[used] / (accumulators[used].sqrt() + 1e-8).unsqueeze(1)
        torch.testing.assert_close(embedding.weight.detach(), weights)
        assert all(torch.equal(a, b) for a, b in zip(head.parameters(), reference_head.parameters(), strict=True))
    assert set(optimizer.state[embedding.weight]) == {"row_sum"}  # one number a row, no moments
    assert embedding.weight.detach()[[0, 2, 5]].equal(weights[[0, 2, 5]])


def test_sparse_rows_take_the_sparse_rate_under_lazy_adam_too() -> None:
    """``sparse_lr_ratio`` scales the sparse rows' rate under either rule (training.sparse_learning_rate): lazy Adam's
    rows at lr * ratio move as AdamW's at that rate, while dense weights keep lr."""
    torch.manual_seed(0)
    dense, sparse = torch.nn.Embedding(8, 3), torch.nn.Embedding(8, 3, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    batches = [torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 2, 2])] * 3
    train(dense, torch.optim.AdamW(dense.parameters(), lr=0.03, weight_decay=0.0), batches)
    train(sparse, LazyAdamW(sparse.parameters(), lr=0.01, sparse_lr_ratio=3.0), batches)
    torch.testing.assert_close(sparse.weight, dense.weight, atol=1e-7, rtol=0)
