"""The recipes the auto mode (``hfnlp train --data``) tries: the profile's wide MLP, the same bag NB-weighted, and a
TextCNN over the same tokens, so that the best two or more can be combined into one ensemble model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hfnlp.profile.recipe import RecipeDraft, recipe_from_profile
from hfnlp.profile.statistics import TextProfile


def candidate_recipes(
    profile: TextProfile,
    data: Mapping[str, Any],
    *,
    output_dir: str,
    seed: int = 42,
    guessed: Mapping[str, str] | None = None,
) -> dict[str, RecipeDraft]:
    """The recipes the auto mode (``hfnlp train --data``) tries, by candidate name, most promising first; each
    trains into ``<output_dir>/candidates/<name>``.

    The NB-weighted bag comes first: Wang & Manning (2012) found NB weighting a robust gain over the plain bag on
    full-length reviews and topics alike (it lost only on short snippets, by less than a point), so under a tight
    time budget it is the one to have. Then :func:`recipe_from_profile`'s plain wide MLP, then the TextCNN."""
    wide = recipe_from_profile(
        profile, data, output_dir=f"{output_dir}/candidates/wide-mlp", seed=seed, guessed=guessed
    )
    return {
        "wide-mlp-nb": naive_bayes_recipe(wide, output_dir=f"{output_dir}/candidates/wide-mlp-nb"),
        "wide-mlp": wide,
        "text-cnn": text_cnn_recipe(wide, profile, output_dir=f"{output_dir}/candidates/text-cnn"),
    }


def naive_bayes_recipe(wide: RecipeDraft, *, output_dir: str) -> RecipeDraft:
    """The wide MLP with each TF-IDF weight times the feature's naive Bayes log-count ratio (NBSVM, Wang & Manning,
    ACL 2012): the features that tell the classes apart weigh more. It helps most on long sentiment texts (IMDb,
    their best result) and can hurt on short ones, hence a candidate of its own, judged on validation."""
    recipe = {**wide.recipe, "output_dir": output_dir, "model": {**wide.recipe["model"], "pooling": "tfidf_nb"}}
    recipe["description"] = wide.recipe["description"].replace("TF-IDF", "NB-weighted TF-IDF")
    why = {
        **wide.why,
        "model.pooling": "sublinear TF-IDF times the naive Bayes log-count ratio, L2-normalised (NBSVM, Wang & "
        "Manning 2012)",
    }
    return RecipeDraft(recipe=recipe, why=why, warnings=list(wide.warnings), header=list(wide.header))


def text_cnn_recipe(wide: RecipeDraft, profile: TextProfile, *, output_dir: str) -> RecipeDraft:
    """The wide MLP's recipe with a TextCNN (Kim, EMNLP 2014) in place of the bag: the same data and tokenizer
    sections, so that the two models read the same token ids and can be combined (``ensemble``)."""
    recipe = {**wide.recipe, "output_dir": output_dir}
    recipe["description"] = wide.recipe["description"].replace("Wide MLP over TF-IDF bags of", "TextCNN over")
    widths = [2, 3, 4] if profile.level == "char" else [3, 4, 5]
    recipe["model"] = {
        "type": "text_cnn",
        "embedding_dim": 128,
        "filter_sizes": widths,
        "num_filters": 128,
        "dropout": 0.5,
        "initialize_embeddings": True,
    }
    batch = wide.recipe["training"]["per_device_train_batch_size"]
    recipe["training"] = {
        **wide.recipe["training"],
        "lr_scheduler_type": "linear",
        "early_stopping_patience": 2,
        "group_by_length": True,
        "mixed_precision": "auto",
    }
    why = {key: reason for key, reason in wide.why.items() if not key.startswith(("model.", "training."))}
    why.update(
        {
            "model.type": "TextCNN (Kim 2014): n-gram detectors over word order, which a bag cannot see",
            "model.embedding_dim": "no pretrained vectors: 128-d learnt embeddings, as the tutorials' TextCNN",
            "model.filter_sizes": f"{profile.unit} windows of {widths[0]}-{widths[-1]}: Kim's 3/4/5 words; "
            "2/3/4 characters for a CJK word of one to three characters",
            "model.num_filters": "128 maps per width (Zhang & Wallace 2015: 100-600 is the useful range)",
            "model.dropout": "Kim's 0.5 before the classifier",
            "model.initialize_embeddings": "xavier-initialised embeddings learn faster than N(0, 1)",
            "training.lr_scheduler_type": "linear decay: a CNN over dense embeddings settles with a falling rate",
            "training.early_stopping_patience": "stop after 2 epochs without a better validation score",
            "training.group_by_length": "batches of similar length: little padding to convolve",
            "training.mixed_precision": "bf16 where the CPU or GPU has it: convolutions run faster",
            "training.per_device_train_batch_size": wide.why.get("training.per_device_train_batch_size", f"{batch}"),
        }
    )
    for key in (
        "num_train_epochs",
        "learning_rate",
        "weight_decay",
        "max_grad_norm",
        "label_smoothing_factor",
        "eval_strategy",
        "metric_for_best_model",
        "warmup_steps",
        "extra_args",
    ):
        why[f"training.{key}"] = wide.why.get(f"training.{key}", "")
    return RecipeDraft(recipe=recipe, why=why, warnings=list(wide.warnings), header=list(wide.header))
