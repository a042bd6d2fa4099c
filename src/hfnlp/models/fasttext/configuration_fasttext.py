"""FastText-style classifier configuration.

Self-contained on purpose: transformers copies this file next to the weights for ``trust_remote_code``
loading, where hfnlp is not installed, so it may import nothing but transformers.
"""

from __future__ import annotations

from transformers import PretrainedConfig

INITIALIZERS = ("xavier", "kaiming", "normal", "default")
POOLINGS = ("mean", "tfidf")
BAG_ACTIVATIONS = ("none", "relu")


class FastTextConfig(PretrainedConfig):
    r"""Configuration of :class:`FastTextForSequenceClassification` (Joulin et al. 2016): the mean of the
    token embeddings and of hashed n-gram embeddings, an optional hidden layer, then a linear classifier.

    With ``pooling="tfidf"`` and ``bag_activation="relu"`` it is the "wide MLP" over TF-IDF bags of n-grams (Galke &
    Scherp, ACL 2022): the embedding tables are its first layer, which beats sequence models on small
    topic-classification sets.

    Labels are set with ``num_labels`` or ``id2label`` / ``label2id``, as for any transformers config.

    Args:
        vocab_size: Number of rows of the token embedding matrix.
        embedding_dim: Size of each token and n-gram embedding.
        pad_token_id: Id of the padding token; its embedding row is zero.
        dropout: Dropout on the averaged embedding.
        freeze_embeddings: Keep the token embedding matrix fixed during training (``requires_grad=False``).
        initializer: Weight initialization scheme applied by the trainer to a new model: ``"xavier"``,
            ``"kaiming"``, ``"normal"`` (std 0.02) or ``"default"`` (PyTorch's own).
        initialize_embeddings: Whether ``initializer`` also re-initializes the embedding matrices.
        ngram_sizes: Lengths of the token n-grams to add (each at least 2); empty for a plain bag of
            token embeddings.
        ngram_buckets: Number of rows of the n-gram embedding matrix: hash buckets, or with ``exact_ngrams`` the
            most n-grams kept.
        exact_ngrams: Give every n-gram of the training split a row of its own (the ``ngram_buckets`` most frequent
            if there are more) instead of hashing n-grams into shared buckets; n-grams never seen in training are
            left out. The n-grams are learnt before training and saved with the weights.
        hidden_size: Size of a ReLU hidden layer before the classifier; 0 for none.
        pooling: How token and n-gram embeddings are combined: ``"mean"`` (fastText) or ``"tfidf"``, a sum
            weighted by sublinear term frequency times inverse document frequency and scaled to unit L2 norm (as
            scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``). The document frequencies are learnt from the
            training split (``FastTextForSequenceClassification.learn_from_training_data``) and saved with the
            weights; tokens and n-grams never seen in training weigh nothing.
        bag_activation: ``"relu"`` adds a bias to the pooled bag and applies a ReLU before dropout, making the
            embedding tables a hidden layer of their own (the wide MLP); ``"none"`` keeps fastText's linear bag.
        sparse_embeddings: Give the token and n-gram tables sparse gradients, so that an optimizer step updates
            only the rows the batch used (fastText's own way; hfnlp trains such models with ``LazyAdamW``). Much
            faster with large tables; not for multi-GPU training over NCCL, which cannot reduce sparse gradients.
    """

    model_type = "hfnlp_fasttext"

    vocab_size: int = 30000
    embedding_dim: int = 300
    pad_token_id: int = 0
    dropout: float = 0.5
    freeze_embeddings: bool = False
    initializer: str = "xavier"
    initialize_embeddings: bool = False
    ngram_sizes: list[int] | tuple[int, ...] = (2,)
    ngram_buckets: int = 200000
    hidden_size: int = 0
    exact_ngrams: bool = False
    pooling: str = "mean"
    bag_activation: str = "none"
    sparse_embeddings: bool = False

    def __post_init__(self, **kwargs) -> None:
        _check_choice("initializer", self.initializer, INITIALIZERS)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_choice("bag_activation", self.bag_activation, BAG_ACTIVATIONS)
        for name in ("vocab_size", "embedding_dim", "ngram_buckets"):
            _check_positive_int(name, getattr(self, name))
        if type(self.hidden_size) is not int or self.hidden_size < 0:
            raise ValueError(
                f"hidden_size must be a non-negative integer (0 = no hidden layer), got {self.hidden_size!r}"
            )
        if not isinstance(self.ngram_sizes, list | tuple):
            raise ValueError(f"ngram_sizes must be a list of n-gram lengths, got {self.ngram_sizes!r}")
        for size in self.ngram_sizes:
            if type(size) is not int or size < 2:
                raise ValueError(f"each of ngram_sizes must be an integer >= 2, got {size!r}")
        # a list, as it comes back from config.json, so that saved and loaded configs compare equal
        self.ngram_sizes = list(self.ngram_sizes)
        if type(self.pad_token_id) is not int or not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"pad_token_id must be an int in [0, vocab_size={self.vocab_size}), not {self.pad_token_id!r}"
            )
        if type(self.dropout) not in (int, float) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {self.dropout!r}")
        super().__post_init__(**kwargs)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def _check_positive_int(name: str, value: object) -> None:
    # type() rather than isinstance(): True is an int too
    if type(value) is not int or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


__all__ = ["FastTextConfig"]
