"""Lean models: fastText's tables saved as int8 (size, logits, remote code, ensembles, training stays float32), the
folder sizes in ``metrics.json``, and checkpoints that keep only what resume and the best model need."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from torch import nn
from transformers import AutoModelForSequenceClassification

from hfnlp.cli import main
from hfnlp.data.text import TextDataConfig
from hfnlp.errors import HfnlpError
from hfnlp.models import FAMILIES
from hfnlp.models.ensemble import EnsembleForSequenceClassification
from hfnlp.models.fasttext import quantize_tables
from hfnlp.models.fasttext.quantized_embedding import QuantizedEmbedding
from hfnlp.models.onnx_export import export_onnx
from hfnlp.profile import candidate_recipes, profile_text_data
from hfnlp.tasks import recipe_from_dict
from hfnlp.tasks.text_classification import with_bags
from hfnlp.training.batching import ArrowRows, TokenIdsCollator
from hfnlp.training.engine import folder_mb, record_folder_sizes
from hfnlp.training.resume import is_safe
from hfnlp.training.run_folder import RunFolder
from tests.conftest import make_sentiment_rows, one_torch_thread, write_csv
from tests.models.test_text_models import LEARNT_FROM, PAD, WIDE_MLP, build, load_with_remote_code, right_pad
from tests.tasks.test_text_classification import FAST, write_recipe

INPUT_IDS = right_pad([[5, 9, 3, 12, 7], [4, 8], [30], [3, 3, 8, 21, 6, 11], [12, 7, 4]])
# Wide enough that the logits sum many quantized values, as a real wide MLP's do.
WIDE = {**WIDE_MLP, "embedding_dim": 64}


@pytest.fixture(autouse=True)
def single_thread():
    with one_torch_thread():
        yield


def logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(INPUT_IDS).logits


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def test_quantized_rows_are_within_half_a_step_and_zero_rows_stay_zero() -> None:
    torch.manual_seed(0)
    table = nn.Embedding(50, 16, padding_idx=0)
    quantized = QuantizedEmbedding.from_embedding(table)
    assert quantized.weight.dtype == torch.int8 and quantized.scale.dtype == torch.float32
    ids = torch.tensor([[0, 3, 49], [7, 7, 0]])
    rows = quantized(ids)
    assert rows.shape == (2, 3, 16) and rows.dtype == torch.float32
    step = table.weight.abs().amax(dim=1) / 127
    assert ((rows - table(ids)).abs() <= step[ids].unsqueeze(-1) / 2 + 1e-7).all()
    assert torch.equal(rows[0, 0], torch.zeros(16)) and quantized.scale[0] == 0


@pytest.mark.parametrize("options", [WIDE, {"ngram_sizes": [2], "embedding_dim": 64}], ids=["wide_mlp", "mean"])
def test_int8_folder_loads_with_logits_within_one_percent_of_float32(options: dict, tmp_path) -> None:
    model = build("fasttext", {**options, "sparse_embeddings": True})
    expected = logits(model)
    model.save_pretrained(tmp_path / "float32")
    quantize_tables(model)
    model.save_pretrained(tmp_path / "int8")

    loaded, info = AutoModelForSequenceClassification.from_pretrained(tmp_path / "int8", output_loading_info=True)

    assert not any(info.values()), f"missing/unexpected/mismatched weights: {info}"
    assert loaded.config.table_storage == "int8"
    assert json.loads((tmp_path / "int8" / "config.json").read_text())["table_storage"] == "int8"
    for name in ("embedding", "ngram_embedding"):
        assert isinstance(getattr(loaded, name), QuantizedEmbedding), name
        assert loaded.state_dict()[f"{name}.weight"].dtype == torch.int8
    assert torch.equal(logits(loaded), logits(model))  # the in-process int8 model, exactly
    assert relative_error(logits(loaded), expected) <= 0.01
    assert torch.equal(logits(loaded).argmax(-1), expected.argmax(-1))


def test_an_int8_folder_is_about_a_quarter_of_the_float32_one(tmp_path) -> None:
    # Tables are nearly all of it, as in the wide MLP: 200 + 2,000 rows of 256 values; the idf weights and n-gram
    # keys (12 bytes a row, unchanged) and the classifier are the rest.
    model = build("fasttext", {**WIDE, "embedding_dim": 256, "vocab_size": 200, "ngram_buckets": 2000})
    model.save_pretrained(tmp_path / "float32")
    quantize_tables(model).save_pretrained(tmp_path / "int8")
    sizes = [(tmp_path / kind / "model.safetensors").stat().st_size for kind in ("float32", "int8")]
    # A row of 256 int8 values and its float32 scale: 260 bytes in place of 1,024.
    assert 0.25 < sizes[1] / sizes[0] < 0.27


def test_int8_tables_skip_what_only_trainable_tables_have(tmp_path) -> None:
    for freeze in (False, True):
        model = build("fasttext", {**WIDE, "freeze_embeddings": freeze})
        quantize_tables(model).save_pretrained(tmp_path / str(freeze))
        loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / str(freeze))  # ties weights
        assert isinstance(loaded.get_input_embeddings(), QuantizedEmbedding)
        assert not any(parameter.dtype == torch.int8 for parameter in loaded.parameters())
        assert torch.equal(logits(loaded), logits(model))
    # A trained model's tables are converted once: a second call changes nothing.
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    quantize_tables(model)
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in state.items())


def test_a_run_trains_float32_tables_and_converts_them_for_the_final_folder() -> None:
    family = FAMILIES["fasttext"]
    section = {"type": "fasttext", **WIDE, "table_storage": "int8"}
    assert family.training_parameters(section) == WIDE
    assert FAMILIES["text_cnn"].training_parameters({"type": "text_cnn", "num_filters": 4}) == {"num_filters": 4}
    model = build("fasttext", family.training_parameters(section))
    assert isinstance(model.embedding, nn.Embedding) and model.config.table_storage == "float32"
    family.convert_for_folder(model, {"type": "fasttext"})  # the recipe asks for nothing: float32 stays
    assert isinstance(model.embedding, nn.Embedding)
    family.convert_for_folder(model, section)
    assert isinstance(model.embedding, QuantizedEmbedding) and model.config.table_storage == "int8"
    # Only how the final folder stores the tables may change when a run resumes; the rest of the model may not.
    assert is_safe("model.table_storage") and not is_safe("model.embedding_dim")


@pytest.mark.slow
def test_int8_folders_load_without_hfnlp_with_the_same_logits(tmp_path) -> None:
    fasttext = quantize_tables(build("fasttext", WIDE, seed=1))
    text_cnn = build("text_cnn", {"filter_sizes": [2, 3]}, seed=2)
    fasttext.save_pretrained(tmp_path / "fasttext")
    ensemble = EnsembleForSequenceClassification.from_members(
        [AutoModelForSequenceClassification.from_pretrained(tmp_path / "fasttext"), text_cnn], [0.5, 0.5]
    )
    ensemble.save_pretrained(tmp_path / "ensemble")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ensemble")
    # The ensemble's members come from its own folder's copy of the fastText files: the same class, by name.
    assert type(reloaded.members[0].ngram_embedding).__name__ == "QuantizedEmbedding"
    assert torch.equal(logits(reloaded), logits(ensemble))
    for folder in ("fasttext", "ensemble"):
        code = tmp_path / folder / "quantized_embedding.py"
        assert code.is_file() and not code.is_symlink(), folder

    torch.save(INPUT_IDS, tmp_path / "input_ids.pt")
    load_with_remote_code(tmp_path, [tmp_path / "fasttext", tmp_path / "ensemble"])
    assert torch.equal(torch.load(tmp_path / "fasttext" / "remote_logits.pt"), logits(fasttext))
    assert torch.equal(torch.load(tmp_path / "ensemble" / "remote_logits.pt"), logits(ensemble))


@pytest.mark.slow
def test_an_int8_fasttext_with_hashed_ngrams_exports_to_onnx(tmp_path) -> None:
    model = build("fasttext", {"ngram_sizes": [2, 3], "vocab_size": 40})
    quantize_tables(model).save_pretrained(tmp_path)
    assert export_onnx(tmp_path).max_abs_diff <= 1e-4
    wide = build("fasttext", WIDE)
    quantize_tables(wide).save_pretrained(tmp_path / "wide")
    with pytest.raises(HfnlpError, match="cannot be exported to ONNX"):
        export_onnx(tmp_path / "wide")


def test_the_auto_modes_bags_save_int8_tables_and_the_text_cnn_does_not_ask(tmp_path) -> None:
    section = {"train_file": str(write_csv(tmp_path / "data.csv", make_sentiment_rows(200)))}
    profile = profile_text_data(TextDataConfig(**section), seed=0)
    drafts = candidate_recipes(profile, section, output_dir=str(tmp_path / "auto"), seed=0)
    for name in ("wide-mlp", "wide-mlp-nb"):
        assert drafts[name].recipe["model"]["table_storage"] == "int8", name
        assert "int8" in drafts[name].to_yaml() and drafts[name].why["model.table_storage"]
    assert "table_storage" not in drafts["text-cnn"].recipe["model"]
    assert not any(key == "model.table_storage" for key in drafts["text-cnn"].why)
    for draft in drafts.values():
        recipe_from_dict(draft.recipe)  # every key is one its model family takes


def test_folder_sizes_are_added_to_metrics_json(tmp_path) -> None:
    run = RunFolder(tmp_path / "run")
    (run.model_dir).mkdir(parents=True)
    (run.model_dir / "model.safetensors").write_bytes(b"\x00" * 3 * 2**20)
    (run.path / "checkpoint-4").mkdir()
    (run.path / "checkpoint-4" / "optimizer.pt").write_bytes(b"\x00" * (5 * 2**20 + 2**19))
    (run.path / "checkpoint-4" / "link").symlink_to(run.model_dir / "model.safetensors")  # not counted twice
    run.metrics_path.write_text(json.dumps({"test": {"accuracy": 0.9}}))

    summary = record_folder_sizes(run, {"test": {"accuracy": 0.9}})

    expected = {"test": {"accuracy": 0.9}, "model_folder_mb": 3.0, "run_folder_mb": 8.5}
    assert summary == expected == json.loads(run.metrics_path.read_text())
    assert folder_mb(tmp_path / "run" / "checkpoint-4") == 5.5


def test_a_run_with_int8_tables_trains_float32_and_saves_int8(tmp_path) -> None:
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(400))
    model = {"type": "fasttext", **WIDE, "ngram_buckets": 2000, "sparse_embeddings": True, "table_storage": "int8"}
    recipe = write_recipe(tmp_path, data, model, num_train_epochs=2)
    assert main(["train", str(recipe), *FAST]) == 0

    run = RunFolder(tmp_path / "run")
    checkpoint = run.checkpoint_dir(run.checkpoint_steps()[-1])
    assert json.loads((checkpoint / "config.json").read_text())["table_storage"] == "float32"  # resumable
    assert json.loads((run.model_dir / "config.json").read_text())["table_storage"] == "int8"
    saved = AutoModelForSequenceClassification.from_pretrained(run.model_dir)
    assert isinstance(saved.ngram_embedding, QuantizedEmbedding)
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["run_folder_mb"] > metrics["model_folder_mb"] > 0
    assert "| optimizer | LazyAdamW (AdamW; the sparse tables: lazy Adam" in (run.model_dir / "README.md").read_text()


def test_a_sparse_model_trains_with_the_adagrad_the_recipe_names(tmp_path) -> None:
    """torch's Adagrad takes sparse gradients: ``optim: adagrad`` is honoured (its per-row accumulator is in the
    checkpoint), not replaced by LazyAdamW; with weight decay, which it refuses for sparse gradients, the recipe is
    refused before any work (exit 2)."""
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(400))
    model = {"type": "fasttext", **WIDE, "ngram_buckets": 2000, "sparse_embeddings": True}
    recipe = write_recipe(tmp_path, data, model, optim="adagrad", learning_rate=0.2)
    assert main(["train", str(recipe), *FAST]) == 0

    run = RunFolder(tmp_path / "run")
    checkpoint = run.checkpoint_dir(run.checkpoint_steps()[-1])
    state = torch.load(checkpoint / "optimizer.pt", weights_only=True)["state"]
    assert state and all(set(entry) == {"step", "sum"} for entry in state.values())  # Adagrad's, not Adam's moments
    assert json.loads(run.metrics_path.read_text())["test"]["accuracy"] >= 0.9
    assert "| optimizer | adagrad, weight decay 0.0 |" in (run.model_dir / "README.md").read_text()

    refused = write_recipe(tmp_path, data, model, optim="adagrad", weight_decay=0.01)
    assert main(["train", str(refused), *FAST]) == 2


@pytest.mark.parametrize(
    ("model", "training"),
    [
        ({"sparse_embeddings": False}, {"sparse_optimizer": "rowwise_adagrad"}),
        ({"sparse_embeddings": True}, {"sparse_learning_rate": 0.05, "optim": "adagrad"}),
    ],
)
def test_sparse_optimizer_settings_that_would_be_ignored_are_refused(tmp_path, capsys, model, training) -> None:
    data = write_csv(tmp_path / "reviews.csv", make_sentiment_rows(40))
    recipe = write_recipe(tmp_path, data, {"type": "fasttext", **WIDE, "ngram_buckets": 200, **model}, **training)
    assert main(["train", str(recipe), *FAST]) == 2
    assert (
        f"training.{next(iter(training))}: applies to a model with model.sparse_embeddings" in capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_training_pools_the_bag_with_embedding_bag_as_evaluation_does_with_index_add() -> None:
    """In training, a TF-IDF bag's sparse tables are pooled by one fused ``embedding_bag``; evaluation keeps the
    lookup, product and ``index_add`` (which ONNX exports and int8 tables take): both give the same logits."""
    model = build("fasttext", {**WIDE, "sparse_embeddings": True, "dropout": 0.0})
    texts = [LEARNT_FROM[0], LEARNT_FROM[3], [5, 9], LEARNT_FROM[4]]
    ids = right_pad(texts)
    mask = ids != PAD
    with torch.no_grad():
        evaluated = model(input_ids=ids, attention_mask=mask).logits
        trained = model.train()(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(trained, evaluated, atol=1e-6, rtol=1e-5)
    model.train()(input_ids=ids, attention_mask=mask).logits.sum().backward()
    assert model.ngram_embedding.weight.grad.is_sparse


@pytest.mark.parametrize("options", [{}, {"exact_ngrams": False, "ngram_buckets": 50}, {"ngram_sizes": []}])
def test_training_from_the_split_s_precomputed_bags_is_training_from_the_ids(options) -> None:
    """The training split carries each text's bag (``text_bags`` → ``with_bags`` → ArrowRows → TokenIdsCollator):
    the model's logits and gradients from those bags are exactly those it computes from the ids."""
    model = build("fasttext", {**WIDE, "sparse_embeddings": True, "dropout": 0.0, **options}).train()
    texts = [LEARNT_FROM[0], LEARNT_FROM[3], [5, 9], [33], LEARNT_FROM[4]]  # [33]: a token never seen in training
    split = with_bags(Dataset.from_dict({"input_ids": texts, "label": [0, 1, 2, 1, 0]}), *model.text_bags(texts))
    batch = TokenIdsCollator(PAD)(ArrowRows(split).__getitems__([1, 0, 4, 3, 2]))
    assert (batch["bag_features"] == -1).any() and ((batch["bag_features"] == -1) == (batch["bag_counts"] == 0)).all()
    results = []
    for inputs in ({"bag_features", "bag_counts"}, {"input_ids", "attention_mask"}):
        model.zero_grad()
        output = model(labels=batch["labels"], **{name: batch[name] for name in inputs})
        output.loss.backward()
        results.append(
            (output.logits, [param.grad.to_dense() for param in model.parameters() if param.grad is not None])
        )
    (bag_logits, bag_grads), (id_logits, id_grads) = results
    assert torch.equal(bag_logits, id_logits)
    assert len(bag_grads) == len(id_grads) and all(map(torch.equal, bag_grads, id_grads))
    assert build("fasttext", {"ngram_sizes": [2]}).text_bags(texts) is None  # mean pooling has no bags
