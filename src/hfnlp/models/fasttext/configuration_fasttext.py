"""FastText-style classifier configuration.

Self-contained on purpose: transformers copies this file and ``configuration_text_classifier.py`` next to the weights
for ``trust_remote_code`` loading, where hfnlp is not installed, so it imports only transformers and huggingface_hub.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers.utils.type_validators import interval, positive_int_field

from .configuration_text_classifier import TextClassifierConfig


@strict(accept_kwargs=True)
class FastTextConfig(TextClassifierConfig):
    r"""Configuration of :class:`FastTextForSequenceClassification` (Joulin et al. 2016): the mean of the
    token embeddings and of hashed n-gram embeddings, an optional hidden layer, then a linear classifier.

    With ``pooling="tfidf"`` and ``bag_activation="relu"`` it is the "wide MLP" over TF-IDF bags of n-grams (Galke &
    Scherp, ACL 2022): the embedding tables are its first layer, which beats sequence models on small
    topic-classification sets.

    The fields every text classifier has (``vocab_size``, ``embedding_dim``, ``pad_token_id``, ``dropout``,
    ``freeze_embeddings``, ``initializer``, ``initialize_embeddings``) are described in
    :class:`TextClassifierConfig`; here ``dropout`` applies to the pooled bag, and ``freeze_embeddings`` to the token
    embeddings only.

    Args:
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
            weights; tokens and n-grams never seen in training weigh nothing. ``"tfidf_nb"`` multiplies each weight by
            the feature's naive Bayes log-count ratio (Wang & Manning, ACL 2012: NBSVM), learnt from the training
            labels: features that tell the classes apart weigh more.
        bag_activation: ``"relu"`` adds a bias to the pooled bag and applies a ReLU before dropout, making the
            embedding tables a hidden layer of their own (the wide MLP); ``"none"`` keeps fastText's linear bag.
        subword_sizes: Lengths of the character n-grams of each word token, taken with ``<`` and ``>`` around the
            word (fastText's subword features, Bojanowski et al. 2017; scikit-learn's ``char_wb`` analyzer): they
            share what the forms of a word share, and give rare and misspelt words features seen in training. Empty
            for none. The table of each vocabulary entry's n-grams is learnt from the vocabulary
            (``learn_from_training_data``) and saved with the weights.
        subword_buckets: Number of rows of the character n-gram embedding matrix (hash buckets).
        subwords_per_token: Character n-grams kept per vocabulary entry, the shorter first (a word of 8 letters has
            21 n-grams of 3 to 5 characters).
        sparse_embeddings: Give the token and n-gram tables sparse gradients, so that an optimizer step updates
            only the rows the batch used (fastText's own way; hfnlp trains such models with ``LazyAdamW``). Much
            faster with large tables; not for multi-GPU training over NCCL, which cannot reduce sparse gradients.
        table_storage: How the token, n-gram and character n-gram tables are stored: ``"float32"``, or ``"int8"``,
            each row as int8 values times one float32 scale (its largest magnitude / 127: each value within 0.4% of
            the row's largest), a quarter of the size, for inference only (the int8 tables do not train). A model
            trains in float32; a recipe's ``model.table_storage: int8`` converts the trained model when its final
            model folder is written (``quantize_tables``), and the saved config then says ``"int8"``.
    """

    model_type = "hfnlp_fasttext"

    ngram_sizes: list[int] | tuple[int, ...] = (2,)
    ngram_buckets: int = positive_int_field(default=200000)
    hidden_size: int = interval(min=0)(default=0)
    exact_ngrams: bool = False
    pooling: Literal["mean", "tfidf", "tfidf_nb"] = "mean"
    bag_activation: Literal["none", "relu"] = "none"
    subword_sizes: list[int] | tuple[int, ...] = ()
    subword_buckets: int = positive_int_field(default=200000)
    subwords_per_token: int = positive_int_field(default=32)
    sparse_embeddings: bool = False
    table_storage: Literal["float32", "int8"] = "float32"

    def __post_init__(self, **kwargs) -> None:
        # a list, as it comes back from config.json, so that saved and loaded configs compare equal
        self.ngram_sizes = list(self.ngram_sizes)
        self.subword_sizes = list(self.subword_sizes)
        super().__post_init__(**kwargs)

    def validate_ngram_sizes(self) -> None:
        """An n-gram is at least two tokens long (single tokens are always in the bag)."""
        if self.ngram_sizes and min(self.ngram_sizes) < 2:
            raise ValueError(f"each of ngram_sizes must be 2 or more, got {self.ngram_sizes}")

    def validate_subwords(self) -> None:
        """Character n-grams are at least one character long and are weighed by the TF-IDF poolings only."""
        if self.subword_sizes and min(self.subword_sizes) < 1:
            raise ValueError(f"each of subword_sizes must be 1 or more, got {self.subword_sizes}")
        if self.subword_sizes and self.pooling == "mean":
            raise ValueError('subword_sizes needs pooling "tfidf" or "tfidf_nb"')


__all__ = ["FastTextConfig"]
