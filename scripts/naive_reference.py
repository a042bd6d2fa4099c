"""The tutorials' way of training, kept as the baseline that ``bench_speed.py`` measures hfnlp against.

Text classification is written the way Chinese-Text-Classification-Pytorch (``utils.py``, ``utils_fasttext.py``,
``train_eval.py``) does it:

* tokenization in Python: a ``dict`` vocabulary built by iterating the characters of every training title, then
  every title mapped id by id and padded (or cut) to a fixed ``pad_size``;
* fastText n-grams hashed in Python, position by position;
* no bucketing: a plain ``DataLoader`` over a ``TensorDataset`` of fixed-size rows, shuffled;
* the model architectures of hfnlp's recipes in plain torch, with the tutorial's own forward passes (TextCNN with
  ``Conv2d`` over the ``(pad_size, embed)`` matrix, the BiLSTM's output at the last padded time step, the fastText
  mean over every padded position);
* the recipes' hyperparameters: batch size, learning rate, AdamW (no weight decay, as Adam), linear decay, gradient
  clipping at 1.0, evaluation on the validation split after every epoch and the best epoch's weights tested.

Captioning follows sgrvinod's *a-PyTorch-Tutorial-to-Image-Captioning*: a word map from a Python ``Counter`` of the
training captions, every caption encoded to a fixed length, a plain ``DataLoader`` over (feature map, caption)
pairs in random order, and a Show-Attend-Tell decoder (hfnlp's captioner architecture) unrolled up to the longest
caption of each batch; captions are generated greedily.

Only what the speed benchmark needs; it is not part of the hfnlp package.
"""

from __future__ import annotations

import copy
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

UNK, PAD = "<UNK>", "<PAD>"
BIGRAM_MULTIPLIER, TRIGRAM_MULTIPLIER = 14918087, 18408749


def build_vocab(texts: Sequence[str], max_size: int, min_freq: int = 1) -> dict[str, int]:
    """Character vocabulary as ``utils.build_vocab`` builds it: count in a dict, keep the most frequent ``max_size``,
    then append ``<UNK>`` and ``<PAD>``."""
    counts: dict[str, int] = {}
    for text in texts:
        for char in [c for c in text]:  # the tutorial's char tokenizer: ``lambda x: [y for y in x]``
            counts[char] = counts.get(char, 0) + 1
    kept = sorted([item for item in counts.items() if item[1] >= min_freq], key=lambda item: item[1], reverse=True)
    vocab = {char: index for index, (char, _) in enumerate(kept[:max_size])}
    vocab.update({UNK: len(vocab), PAD: len(vocab) + 1})
    return vocab


def encode(texts: Sequence[str], vocab: dict[str, int], pad_size: int) -> list[list[int]]:
    """Each text as ``pad_size`` ids: characters looked up one by one, padded with ``<PAD>`` or cut."""
    rows = []
    for text in texts:
        tokens = [c for c in text]
        if len(tokens) < pad_size:
            tokens.extend([PAD] * (pad_size - len(tokens)))
        else:
            tokens = tokens[:pad_size]
        rows.append([vocab.get(token, vocab.get(UNK)) for token in tokens])
    return rows


def hash_ngrams(rows: Sequence[Sequence[int]], buckets: int) -> tuple[list[list[int]], list[list[int]]]:
    """Bigram and trigram bucket ids ending at every position, computed in Python (``utils_fasttext.py``'s layout;
    positions before the text count as id 0)."""
    bigrams, trigrams = [], []
    for ids in rows:
        bigram, trigram = [], []
        for t in range(len(ids)):
            t1 = ids[t - 1] if t >= 1 else 0
            t2 = ids[t - 2] if t >= 2 else 0
            bigram.append((t1 * BIGRAM_MULTIPLIER + ids[t]) % buckets)
            trigram.append((t2 * BIGRAM_MULTIPLIER * TRIGRAM_MULTIPLIER + t1 * BIGRAM_MULTIPLIER + ids[t]) % buckets)
        bigrams.append(bigram)
        trigrams.append(trigram)
    return bigrams, trigrams


def load_vectors(path: str, vocab: dict[str, int], dim: int) -> torch.Tensor:
    """An embedding matrix for ``vocab`` from a word2vec text file, as ``utils.py`` builds ``embedding_*.npz``: random
    rows (uniform in [0, 1)), overwritten by the file's vector wherever the token has one."""
    embeddings = torch.rand(len(vocab), dim)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip().split(" ")
            if len(parts) == dim + 1 and parts[0] in vocab:
                embeddings[vocab[parts[0]]] = torch.tensor([float(x) for x in parts[1:]])
    return embeddings


class TextCNN(nn.Module):
    """Kim's TextCNN as ``models/TextCNN.py`` writes it: ``Conv2d(1, filters, (k, embed))`` per width."""

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        embed: int,
        filter_sizes: Sequence[int],
        num_filters: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=vocab_size - 1)
        self.convs = nn.ModuleList([nn.Conv2d(1, num_filters, (k, embed)) for k in filter_sizes])
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(num_filters * len(filter_sizes), num_labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits for ``ids`` of shape (batch, pad_size)."""
        out = self.embedding(ids).unsqueeze(1)
        pooled = []
        for conv in self.convs:
            features = F.relu(conv(out)).squeeze(3)
            pooled.append(F.max_pool1d(features, features.size(2)).squeeze(2))
        return self.fc(self.dropout(torch.cat(pooled, 1)))


class TextRNN(nn.Module):
    """``models/TextRNN.py``: a (bi)LSTM over the padded sequence, classified from the last time step's output."""

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        embed: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=vocab_size - 1)
        self.lstm = nn.LSTM(
            embed, hidden_size, num_layers, bidirectional=bidirectional, batch_first=True, dropout=dropout
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), num_labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits for ``ids`` of shape (batch, pad_size)."""
        out, _ = self.lstm(self.embedding(ids))
        return self.fc(self.dropout(out[:, -1, :]))


class FastText(nn.Module):
    """fastText-style: the mean of token, bigram and trigram embeddings over every padded position, a hidden
    layer and a linear head (hfnlp's layer sizes; n-grams share one hashed table, as in hfnlp)."""

    def __init__(
        self, vocab_size: int, num_labels: int, embed: int, buckets: int, hidden_size: int, dropout: float
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=vocab_size - 1)
        self.embedding_ngram = nn.Embedding(buckets, embed)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(embed, hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_labels)

    def forward(self, ids: torch.Tensor, bigrams: torch.Tensor, trigrams: torch.Tensor) -> torch.Tensor:
        """Logits for ``ids``, ``bigrams`` and ``trigrams``, each of shape (batch, pad_size)."""
        out = torch.cat([self.embedding(ids), self.embedding_ngram(bigrams), self.embedding_ngram(trigrams)], dim=1)
        out = self.dropout(out.mean(dim=1))
        return self.fc2(F.relu(self.fc1(out)))


def init_network(model: nn.Module, exclude: str = "embedding") -> None:
    """``train_eval.init_network``: Xavier for weight matrices, zero biases, embeddings left alone."""
    for name, weight in model.named_parameters():
        if exclude in name:
            continue
        if "weight" in name and weight.dim() >= 2:
            nn.init.xavier_normal_(weight)
        elif "bias" in name:
            nn.init.constant_(weight, 0)


@dataclass
class NaiveTextData:
    """Fixed-size id rows (and, for fastText, n-gram rows) with labels for each split."""

    vocab: dict[str, int]
    tensors: dict[str, tuple[torch.Tensor, ...]]
    seconds: dict[str, float] = field(default_factory=dict)


def prepare_data(
    splits: dict[str, tuple[list[str], list[int]]], pad_size: int, max_vocab: int, ngram_buckets: int | None = None
) -> NaiveTextData:
    """Vocabulary from the train texts, then every split encoded (and n-gram hashed) in Python; times each stage."""
    started = time.perf_counter()
    vocab = build_vocab(splits["train"][0], max_size=max_vocab)
    seconds = {"vocab": time.perf_counter() - started}
    tensors = {}
    started = time.perf_counter()
    for split, (texts, labels) in splits.items():
        rows = encode(texts, vocab, pad_size)
        inputs: list[list[list[int]]] = [rows]
        if ngram_buckets:
            inputs.extend(hash_ngrams(rows, ngram_buckets))
        tensors[split] = (*(torch.LongTensor(part) for part in inputs), torch.LongTensor(labels))
    seconds["encode"] = time.perf_counter() - started
    return NaiveTextData(vocab=vocab, tensors=tensors, seconds=seconds)


@dataclass
class NaiveRunResult:
    """What one naive training run measured."""

    epoch_seconds: list[float]
    eval_seconds: list[float]
    eval_rows: int
    train_rows: int
    validation_accuracies: list[float]
    best_validation_accuracy: float
    test_accuracy: float
    test_seconds: float


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """Accuracy of ``model`` over ``loader`` (eval mode, no gradients)."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for *inputs, labels in loader:
            correct += (model(*inputs).argmax(dim=1) == labels).sum().item()
            total += len(labels)
    return correct / max(total, 1)


def train_and_evaluate(
    model: nn.Module,
    tensors: dict[str, tuple[torch.Tensor, ...]],
    *,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    learning_rate: float,
    max_grad_norm: float = 1.0,
    seed: int = 42,
    on_epoch_end: Callable[[int, float], None] | None = None,
) -> NaiveRunResult:
    """Train for ``epochs`` on ``tensors['train']``, evaluate on ``validation`` after each epoch, keep the best
    epoch's weights and test them; return the timings and accuracies."""
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        TensorDataset(*tensors["train"]), batch_size=batch_size, shuffle=True, generator=generator
    )
    eval_loaders = {
        split: DataLoader(TensorDataset(*tensors[split]), batch_size=eval_batch_size)
        for split in ("validation", "test")
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    total_steps = epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    epoch_seconds, eval_seconds, accuracies = [], [], []
    best_accuracy, best_state = -1.0, None
    for epoch in range(epochs):
        model.train()
        started = time.perf_counter()
        for *inputs, labels in train_loader:
            loss = F.cross_entropy(model(*inputs), labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
        epoch_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        accuracy = evaluate(model, eval_loaders["validation"])
        eval_seconds.append(time.perf_counter() - started)
        accuracies.append(accuracy)
        if accuracy > best_accuracy:
            best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
        if on_epoch_end is not None:
            on_epoch_end(epoch, accuracy)
    model.load_state_dict(best_state)
    started = time.perf_counter()
    test_accuracy = evaluate(model, eval_loaders["test"])
    return NaiveRunResult(
        epoch_seconds=epoch_seconds,
        eval_seconds=eval_seconds,
        eval_rows=len(tensors["validation"][0]),
        train_rows=len(tensors["train"][0]),
        validation_accuracies=accuracies,
        best_validation_accuracy=best_accuracy,
        test_accuracy=test_accuracy,
        test_seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- image captioning

CAPTION_SPECIALS = ("<pad>", "<unk>", "<start>", "<end>")
_WORD = re.compile(r"[^\W_]+")  # words without punctuation, as hfnlp's caption tokenizer splits them


def caption_words(caption: str) -> list[str]:
    """Lower-cased words of a caption, punctuation dropped."""
    return _WORD.findall(caption.lower())


def build_word_map(captions: Sequence[str], min_freq: int) -> dict[str, int]:
    """``create_input_files``' word map: special words first, then every word seen at least ``min_freq`` times."""
    counts = Counter()
    for caption in captions:
        counts.update(caption_words(caption))
    words = [word for word, count in counts.most_common() if count >= min_freq]
    return {word: index for index, word in enumerate([*CAPTION_SPECIALS, *words])}


def encode_captions(
    captions: Sequence[str], word_map: dict[str, int], max_length: int
) -> tuple[list[list[int]], list[int]]:
    """Each caption as ``<start> words <end>`` padded to ``max_length`` ids, and its length before padding."""
    rows, lengths = [], []
    unk, pad = word_map["<unk>"], word_map["<pad>"]
    for caption in captions:
        ids = [word_map.get(word, unk) for word in caption_words(caption)][: max_length - 2]
        ids = [word_map["<start>"], *ids, word_map["<end>"]]
        lengths.append(len(ids))
        rows.append(ids + [pad] * (max_length - len(ids)))
    return rows, lengths


class CaptionDataset(Dataset):
    """(feature map, caption ids, caption length) for every caption of every image."""

    def __init__(self, features: object, image_rows: Sequence[int], captions: list[list[int]], lengths: list[int]):
        self.features = features
        self.image_rows = list(image_rows)
        self.captions = torch.LongTensor(captions)
        self.lengths = torch.LongTensor(lengths)

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = torch.from_numpy(self.features[self.image_rows[index]].astype("float32"))
        return features, self.captions[index], self.lengths[index]


class AttentionDecoder(nn.Module):
    """Show, Attend and Tell's decoder as the tutorial's ``models.py`` writes it, with hfnlp's captioner architecture:
    additive (tanh) attention, a scalar gate on the context, an ``LSTMCell`` started from the mean feature, dropout
    and a word layer."""

    def __init__(
        self, encoder_dim: int, vocab_size: int, embed: int, hidden_size: int, attention_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(hidden_size, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.init_h = nn.Linear(encoder_dim, hidden_size)
        self.init_c = nn.Linear(encoder_dim, hidden_size)
        self.f_beta = nn.Linear(hidden_size, 1)
        self.decode_step = nn.LSTMCell(embed + encoder_dim, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_size, vocab_size)

    def start(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Initial hidden and cell states, and the projected features for attention."""
        mean = features.mean(dim=1)
        return self.init_h(mean), self.init_c(mean), self.encoder_att(features)

    def step(
        self, words: torch.Tensor, h: torch.Tensor, c: torch.Tensor, features: torch.Tensor, projected: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One word: logits, new states and the attention weights."""
        energy = self.full_att(torch.tanh(projected + self.decoder_att(h).unsqueeze(1))).squeeze(2)
        alpha = F.softmax(energy, dim=1)
        context = (features * alpha.unsqueeze(2)).sum(dim=1) * torch.sigmoid(self.f_beta(h))
        h, c = self.decode_step(torch.cat([self.embedding(words), context], dim=1), (h, c))
        return self.fc(self.dropout(h)), h, c, alpha

    def forward(self, features: torch.Tensor, captions: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits (batch, steps, vocab) and attention weights (batch, steps, regions)."""
        h, c, projected = self.start(features)
        logits, alphas = [], []
        for t in range(steps):
            out, h, c, alpha = self.step(captions[:, t], h, c, features, projected)
            logits.append(out)
            alphas.append(alpha)
        return torch.stack(logits, dim=1), torch.stack(alphas, dim=1)

    @torch.no_grad()
    def greedy(self, features: torch.Tensor, start: int, max_steps: int) -> torch.Tensor:
        """Greedy captions (batch, max_steps) of word ids, without the start word."""
        h, c, projected = self.start(features)
        words = torch.full((features.shape[0],), start, dtype=torch.long)
        generated = []
        for _ in range(max_steps):
            out, h, c, _ = self.step(words, h, c, features, projected)
            out[:, [0, 2]] = float("-inf")  # never <pad> or <start>
            words = out.argmax(dim=1)
            generated.append(words)
        return torch.stack(generated, dim=1)


def caption_loss(
    decoder: AttentionDecoder, features: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor, alpha_c: float
) -> torch.Tensor:
    """Cross-entropy over the real words plus the doubly stochastic attention penalty, up to the longest caption."""
    steps = int(lengths.max()) - 1
    logits, alphas = decoder(features, captions, steps)
    targets = captions[:, 1 : steps + 1]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0)
    real = (torch.arange(steps).unsqueeze(0) < (lengths - 1).unsqueeze(1)).unsqueeze(2).to(alphas.dtype)
    return loss + alpha_c * ((1.0 - (alphas * real).sum(dim=1)) ** 2).mean()


def decode_words(ids: Sequence[int], words: Sequence[str], end: int) -> str:
    """A generated id sequence as text, up to the end word."""
    out = []
    for index in ids:
        if index == end:
            break
        out.append(words[index])
    return " ".join(out)
