"""LazyAdamW: AdamW's update for dense gradients and, for sparse ones, the same update on the rows used."""

from __future__ import annotations

import io

import torch

from hfnlp.training.optim import LazyAdamW, uses_sparse_gradients


def train(embedding: torch.nn.Embedding, optimizer: torch.optim.Optimizer, batches: list[torch.Tensor]) -> None:
    for batch in batches:
        optimizer.zero_grad()
        embedding(batch).pow(2).sum().backward()
        optimizer.step()


def test_dense_gradients_get_exactly_adamw() -> None:
    torch.manual_seed(0)
    reference, lazy = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    lazy.load_state_dict(reference.state_dict())
    optimizers = [
        torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=0.1),
        LazyAdamW(lazy.parameters(), lr=0.01, weight_decay=0.1),
    ]
    for _ in range(5):
        inputs = torch.randn(4, 5)
        for model, optimizer in zip((reference, lazy), optimizers, strict=True):
            optimizer.zero_grad()
            model(inputs).pow(2).sum().backward()
            optimizer.step()
    assert all(torch.equal(a, b) for a, b in zip(reference.parameters(), lazy.parameters(), strict=True))


def test_sparse_gradients_update_only_the_rows_used_as_adamw_would() -> None:
    torch.manual_seed(0)
    dense, sparse = torch.nn.Embedding(8, 3), torch.nn.Embedding(8, 3, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    assert uses_sparse_gradients(sparse) and not uses_sparse_gradients(dense)
    every_row = [torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 2, 2])] * 4  # repeated ids: summed gradients
    train(dense, torch.optim.AdamW(dense.parameters(), lr=0.01, weight_decay=0.1), every_row)
    optimizer = LazyAdamW(sparse.parameters(), lr=0.01, weight_decay=0.1)
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
