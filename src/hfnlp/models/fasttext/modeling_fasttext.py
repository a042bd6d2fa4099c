"""FastText-style classifier: mean of token and hashed n-gram embeddings, optional hidden layer, linear head.

Self-contained on purpose: transformers copies this file, ``configuration_fasttext.py``, ``quantized_embedding.py``
and the shared ``*_text_classifier.py`` files next to the weights for ``trust_remote_code`` loading, where hfnlp is
not installed, so it imports only torch and transformers.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_fasttext import FastTextConfig
from .modeling_text_classifier import TextClassifierPreTrainedModel
from .quantized_embedding import QuantizedEmbedding

# The n-gram hash works on 31-bit states so that a state times the (31-bit, odd) multiplier fits in int64.
_HASH_MASK = (1 << 31) - 1
_HASH_MULTIPLIER = 0x5BD1E995  # MurmurHash2's multiplier
_NO_NGRAM = 1 << 62  # an n-gram row not taken: larger than every 31-bit hash, so it sorts last and matches none
_NO_SUBWORD = -1  # an unused slot of a vocabulary entry's character n-grams


def _mix(state: torch.Tensor) -> torch.Tensor:
    # Multiply-xorshift: a bijection on 31-bit values that spreads every input bit over the low bits, so
    # that "% buckets" below does not map n-grams of nearby token ids to nearby (colliding) buckets.
    state = (state * _HASH_MULTIPLIER) & _HASH_MASK
    return state ^ (state >> 13)


def ngram_hashes(input_ids: torch.Tensor, n: int) -> torch.Tensor:
    """31-bit hashes of the n-grams of consecutive tokens: shape (batch, time - n + 1).

    Deterministic integer arithmetic only, so hashes are the same on every device, run and platform.
    """
    windows = input_ids.long().unfold(1, n, 1)
    # Seeding with n keeps a bigram and a trigram from sharing a hash by construction.
    state = torch.full_like(windows[..., 0], n)
    for position in range(n):
        state = _mix(state ^ (windows[..., position] & _HASH_MASK))
    return _mix(state)


def hash_ngrams(input_ids: torch.Tensor, n: int, buckets: int) -> torch.Tensor:
    """Bucket ids in ``[0, buckets)`` of the n-grams of consecutive tokens: shape (batch, time - n + 1)."""
    return ngram_hashes(input_ids, n) % buckets


def subword_rows(token: str, sizes: Sequence[int], buckets: int, limit: int) -> list[int]:
    """Bucket ids of the character n-grams of ``token`` written ``<token>`` (fastText's boundary marks), of each
    length in ``sizes``, shorter n-grams first, ``limit`` at most; CRC-32 hashes, the same on every platform."""
    marked = f"<{token}>"
    grams = [marked[i : i + n] for n in sorted(sizes) for i in range(len(marked) - n + 1)]
    return [zlib.crc32(gram.encode("utf-8")) % buckets for gram in grams[:limit]]


class FastTextForSequenceClassification(TextClassifierPreTrainedModel):
    """FastText-style classifier; padding (``attention_mask == 0``) never enters the average, and an n-gram counts
    only if all its tokens are real."""

    config_class = FastTextConfig

    def __init__(self, config: FastTextConfig) -> None:
        super().__init__(config, sparse_embeddings=config.sparse_embeddings)
        dim = config.embedding_dim
        if config.table_storage == "int8":
            self.embedding = QuantizedEmbedding(config.vocab_size, dim)
        self.ngram_embedding = self._table(config.ngram_buckets) if config.ngram_sizes else None
        self.subword_embedding = self._table(config.subword_buckets) if config.subword_sizes else None
        # Where each kind of feature starts in the feature ids of the TF-IDF bag: tokens, n-grams, subwords.
        self._subword_offset = config.vocab_size + (config.ngram_buckets if config.ngram_sizes else 0)
        self._feature_count = self._subword_offset + (config.subword_buckets if config.subword_sizes else 0)
        self.bag_bias = nn.Parameter(torch.zeros(dim)) if config.bag_activation == "relu" else None
        self.dropout = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(dim, config.hidden_size) if config.hidden_size else None
        self.classifier = nn.Linear(config.hidden_size or dim, config.num_labels)
        # Statistics of the training split (learn_from_training_data sets them), in persistent buffers: saved with
        # the weights, so a loaded model computes exactly what the trained one did.
        if config.pooling != "mean":
            # Inverse document frequency of every token id, then of every n-gram row (times the NB weight with
            # "tfidf_nb").
            self.register_buffer("idf", torch.ones(self._feature_count))
        if config.subword_sizes:
            # The character n-gram rows of every vocabulary entry (learnt from the vocabulary), _NO_SUBWORD-padded.
            self.register_buffer(
                "subword_table", torch.full((config.vocab_size, config.subwords_per_token), _NO_SUBWORD)
            )
        if config.exact_ngrams and config.ngram_sizes:
            # The hashes of the training split's n-grams, sorted: the n-gram in row i hashes to ngram_keys[i].
            self.register_buffer("ngram_keys", torch.full((config.ngram_buckets,), _NO_NGRAM))
        self.post_init()

    def _table(self, rows: int) -> nn.Module:
        """An n-gram or character n-gram table of ``rows`` rows, stored as ``config.table_storage`` says."""
        if self.config.table_storage == "int8":
            return QuantizedEmbedding(rows, self.config.embedding_dim)
        return nn.Embedding(rows, self.config.embedding_dim, sparse=self.config.sparse_embeddings)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        bag_features: torch.LongTensor | None = None,
        bag_counts: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Classify a batch of right-padded token sequences (see ``TextClassifierPreTrainedModel.forward``), or, for
        a TF-IDF pooling, their bags as :meth:`text_bags` computed them: ``bag_features`` and ``bag_counts`` of shape
        (batch, features), right-padded with -1 and 0. Training passes the bags, computed once for the whole split
        instead of in every epoch; the logits are the same either way."""
        if bag_features is None:
            return super().forward(input_ids, attention_mask, labels, **kwargs)
        valid = bag_features >= 0
        rows = torch.arange(bag_features.shape[0], device=bag_features.device).unsqueeze(1).expand_as(bag_features)
        pooled = self._pool_bag(rows[valid], bag_features[valid], bag_counts[valid], bag_features.shape[0])
        return self.output(self._head(pooled), labels)

    def logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Class scores (batch, num_labels) from the bag of the real tokens (``mask`` True) and their n-grams."""
        if self.config.pooling == "mean":
            return self._head(self._mean_pool(input_ids, mask))
        return self._head(self._pool_bag(*self._bag_of_features(input_ids, mask), input_ids.shape[0]))

    def _head(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.bag_bias is not None:
            pooled = torch.relu(pooled + self.bag_bias)
        features = self.dropout(pooled)
        if self.hidden is not None:
            features = torch.relu(self.hidden(features))
        return self.classifier(features)

    def _mean_pool(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        dtype = self.classifier.weight.dtype  # the tables' own may be int8
        token_weights = mask.unsqueeze(-1).to(dtype)
        total = (self.embedding(input_ids) * token_weights).sum(dim=1)
        count = token_weights.sum(dim=1)
        for n in self.config.ngram_sizes:
            if input_ids.shape[1] < n:
                continue
            ngram_ids, known = self._ngram_rows(input_ids, n)
            ngram_weights = (mask.unfold(1, n, 1).all(dim=-1) & known).unsqueeze(-1).to(dtype)
            total = total + (self.ngram_embedding(ngram_ids) * ngram_weights).sum(dim=1)
            count = count + ngram_weights.sum(dim=1)
        # An all-padding row averages nothing; clamping gives it a zero vector instead of 0/0.
        return total / count.clamp(min=1)

    def _pool_bag(self, rows: torch.Tensor, features: torch.Tensor, counts: torch.Tensor, texts: int) -> torch.Tensor:
        """The TF-IDF-weighted, L2-normalised sum of the table rows of each text's distinct ``features`` (``counts``
        times in text ``rows``, as :meth:`_bag_of_features` lists them): shape (texts, embedding_dim)."""
        dtype = self.classifier.weight.dtype  # the tables' own may be int8
        weights = (1 + counts.to(dtype).log()) * self.idf[features].to(dtype)
        norms = torch.zeros(texts, dtype=dtype, device=weights.device).index_add_(0, rows, weights**2)
        weights = weights / norms.sqrt().clamp(min=1e-12)[rows]
        tokens = features < self.config.vocab_size
        subwords = features >= self._subword_offset
        pooled = torch.zeros(texts, self.config.embedding_dim, dtype=dtype, device=weights.device)
        for table, kind, offset in (
            (self.embedding, tokens, 0),
            (self.ngram_embedding, ~tokens & ~subwords, self.config.vocab_size),
            (self.subword_embedding, subwords, self._subword_offset),
        ):
            if table is not None:
                pooled = self._add_weighted_rows(pooled, table, features[kind] - offset, rows[kind], weights[kind])
        return pooled

    def _add_weighted_rows(
        self, pooled: torch.Tensor, table: nn.Module, ids: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """``pooled`` plus, for each text, the sum of ``weights`` times the ``table`` rows of ``ids`` (entries of text
        ``rows``, in row order)."""
        if self.training and isinstance(table, nn.Embedding):
            # One fused kernel forward and backward: measured 3.4 ms against 12.9 ms for the lookup, product and
            # index_add below on the n-gram table of a THUCNews batch of 512 titles.
            starts = torch.searchsorted(rows, torch.arange(pooled.shape[0], device=rows.device))
            return pooled + nn.functional.embedding_bag(
                ids, table.weight, starts, mode="sum", per_sample_weights=weights, sparse=table.sparse
            ).to(pooled.dtype)
        return pooled.index_add(0, rows, table(ids) * weights[:, None])

    def _bag_of_features(
        self, input_ids: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every distinct token, n-gram and character n-gram of each text as ``(row, feature, count)``: features
        below ``vocab_size`` are token ids, then come n-gram buckets offset by ``vocab_size``, then character n-gram
        buckets offset by ``_subword_offset``."""
        vocab_size = self.config.vocab_size
        features, valid = [input_ids.long()], [mask]
        for n in self.config.ngram_sizes:
            if input_ids.shape[1] >= n:
                ngram_ids, known = self._ngram_rows(input_ids, n)
                features.append(ngram_ids + vocab_size)
                valid.append(mask.unfold(1, n, 1).all(dim=-1) & known)
        if self.subword_embedding is not None:
            table = self.subword_table[input_ids.long()]  # (batch, time, subwords_per_token)
            features.append((table.clamp(min=0) + self._subword_offset).flatten(1))
            valid.append((mask.unsqueeze(-1) & (table != _NO_SUBWORD)).flatten(1))
        features, valid = torch.cat(features, dim=1), torch.cat(valid, dim=1)
        width = self._feature_count
        rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(features)
        keys, counts = torch.unique((rows * width + features)[valid], return_counts=True)
        return keys // width, keys % width, counts

    def _ngram_rows(self, input_ids: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Row of every n-gram in the n-gram table, and whether it has one (hashed n-grams always do)."""
        if not self.config.exact_ngrams:
            return hash_ngrams(input_ids, n, self.config.ngram_buckets), torch.ones_like(
                input_ids[:, n - 1 :], dtype=torch.bool
            )
        hashes = ngram_hashes(input_ids, n)
        rows = torch.searchsorted(self.ngram_keys, hashes).clamp(max=self.config.ngram_buckets - 1)
        return rows, self.ngram_keys[rows] == hashes

    @torch.no_grad()
    def learn_from_training_data(
        self,
        input_ids: Sequence[Sequence[int]],
        labels: Sequence[int] | None = None,
        batch_size: int = 1024,
        vocabulary: Sequence[str | None] | None = None,
    ) -> None:
        """Learn what ``exact_ngrams``, ``subword_sizes`` and the TF-IDF poolings take from the training texts'
        token ids (unpadded), for ``pooling="tfidf_nb"`` their class ids ``labels``, and for ``subword_sizes`` the
        ``vocabulary``: the text of each token id, None for a special token (which has no character n-grams).

        ``subword_sizes``: each vocabulary entry's character n-gram rows (:func:`subword_rows`).

        ``exact_ngrams``: a row for each n-gram, the ``ngram_buckets`` found in most texts if there are more.
        ``tfidf``: inverse document frequencies ``ln((1 + n) / (1 + df)) + 1`` for what occurs in df of the n texts
        (scikit-learn's smoothed idf), 0 for what never occurs, so that unseen tokens and n-grams weigh nothing.
        ``tfidf_nb``: the idf times the feature's largest one-vs-rest naive Bayes log-count ratio in magnitude,
        ``|ln((p_c / |p_c|) / (q_c / |q_c|))|`` with ``p_c = 1 + df in class c`` and ``q_c = 1 + df in the others``
        (Wang & Manning 2012, NBSVM; the sign is the classifier's to learn). Does nothing for a plain fastText model.
        """
        if self.config.exact_ngrams and self.config.ngram_sizes:
            hashes = []
            for batch, mask in self._batches(input_ids, batch_size):
                rows = torch.arange(batch.shape[0]).unsqueeze(1)
                for n in self.config.ngram_sizes:
                    if batch.shape[1] >= n:
                        valid = mask.unfold(1, n, 1).all(dim=-1)
                        keys = (rows * (1 << 31) + ngram_hashes(batch, n))[valid]
                        hashes.append(torch.unique(keys) % (1 << 31))  # once per text: document frequencies
            found, document_frequency = torch.unique(torch.cat(hashes), return_counts=True)
            # Most frequent first; a stable sort of the (sorted) hashes breaks ties the same way on every run.
            order = torch.sort(-document_frequency, stable=True).indices
            kept = found[order[: self.config.ngram_buckets]].sort().values
            self.ngram_keys.fill_(_NO_NGRAM)
            self.ngram_keys[: len(kept)] = kept.to(self.ngram_keys.device)
        if self.config.subword_sizes:
            self._learn_subwords(vocabulary)
        if self.config.pooling == "mean":
            return
        if self.config.pooling == "tfidf_nb" and labels is None:
            raise ValueError('pooling "tfidf_nb" learns its weights from the training labels: pass labels')
        classes = self.config.num_labels if self.config.pooling == "tfidf_nb" else 1
        # Documents of each class that hold each feature (one row when the classes do not matter).
        by_class = torch.zeros(classes, self.idf.shape[0], dtype=torch.float64, device=self.idf.device)
        label_ids = torch.as_tensor(labels if labels is not None else [0] * len(input_ids), device=self.idf.device)
        for start, (batch, mask) in zip(
            range(0, len(input_ids), batch_size), self._batches(input_ids, batch_size), strict=True
        ):
            rows, features, _ = self._bag_of_features(batch.to(self.idf.device), mask.to(self.idf.device))
            text_classes = label_ids[start : start + batch.shape[0]][rows] if classes > 1 else 0
            by_class.index_put_(
                (torch.as_tensor(text_classes, device=by_class.device).expand_as(features), features),
                torch.ones_like(features, dtype=torch.float64),
                accumulate=True,
            )
        document_frequency = by_class.sum(dim=0)
        idf = torch.log((1 + len(input_ids)) / (1 + document_frequency)) + 1
        if classes > 1:
            inside = 1 + by_class
            outside = 1 + document_frequency - by_class
            ratio = (inside / inside.sum(dim=1, keepdim=True)) / (outside / outside.sum(dim=1, keepdim=True))
            idf = idf * ratio.log().abs().amax(dim=0)
        self.idf.copy_(torch.where(document_frequency > 0, idf, torch.zeros_like(idf)))

    def _learn_subwords(self, vocabulary: Sequence[str | None] | None) -> None:
        config = self.config
        if vocabulary is None or len(vocabulary) != config.vocab_size:
            raise ValueError(f"subword_sizes needs the text of the {config.vocab_size} token ids: pass vocabulary")
        width = config.subwords_per_token
        table = []
        for token in vocabulary:
            rows = subword_rows(token, config.subword_sizes, config.subword_buckets, width) if token else []
            table.append(rows + [_NO_SUBWORD] * (width - len(rows)))
        self.subword_table.copy_(torch.tensor(table, dtype=torch.long))

    @torch.no_grad()
    def text_bags(
        self, input_ids: Sequence[Sequence[int]], batch_size: int = 1024
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Each text's bag for :meth:`forward`'s ``bag_features`` and ``bag_counts``: how many distinct features
        each of the (unpadded) ``input_ids`` has, then all their features and counts, text after text; None when
        the model pools without bags (``pooling: mean``). The statistics of :meth:`learn_from_training_data` must
        be learnt first (they decide which n-grams have a row)."""
        if self.config.pooling == "mean":
            return None
        lengths, features, counts = [], [], []
        for batch, mask in self._batches(input_ids, batch_size):
            rows, batch_features, batch_counts = self._bag_of_features(
                batch.to(self.idf.device), mask.to(self.idf.device)
            )
            lengths.append(torch.bincount(rows, minlength=batch.shape[0]))
            features.append(batch_features)
            counts.append(batch_counts)
        if not lengths:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        return torch.cat(lengths).cpu(), torch.cat(features).cpu(), torch.cat(counts).cpu()

    def _batches(
        self, input_ids: Sequence[Sequence[int]], batch_size: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(input_ids), batch_size):
            chunk = [torch.as_tensor(ids, dtype=torch.long) for ids in input_ids[start : start + batch_size]]
            batch = nn.utils.rnn.pad_sequence(chunk, batch_first=True, padding_value=self.config.pad_token_id)
            lengths = torch.tensor([len(ids) for ids in chunk])
            yield batch, torch.arange(batch.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)


def quantize_tables(model: FastTextForSequenceClassification) -> FastTextForSequenceClassification:
    """Store the embedding tables of a trained float32 ``model`` as int8 (:class:`QuantizedEmbedding`), in place,
    and set ``config.table_storage`` to ``"int8"``, so that it saves and loads as such; returns ``model``.

    The tables are most of the wide MLP's size: its folder shrinks about fourfold. The quantized tables have no
    gradient: quantize a model once it is trained.
    """
    for name in ("embedding", "ngram_embedding", "subword_embedding"):
        table = getattr(model, name)
        if isinstance(table, nn.Embedding):
            setattr(model, name, QuantizedEmbedding.from_embedding(table))
    model.config.table_storage = "int8"
    return model


__all__ = ["FastTextForSequenceClassification", "hash_ngrams", "ngram_hashes", "quantize_tables", "subword_rows"]
