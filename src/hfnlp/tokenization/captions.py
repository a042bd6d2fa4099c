"""The caption tokenizer: word level, trained once on the train captions, saved with the model.

Words are lower-cased and split on white space and punctuation (punctuation is dropped); words seen fewer
than ``min_frequency`` times become ``<unk>``. Every encoded caption is ``<start> words… <end>``. It is a
``PreTrainedTokenizerFast`` built with 🤗 ``tokenizers``, saved in the run folder and in the model folder, and
reused on resume (see :func:`hfnlp.tokenization.text.load_saved_tokenizer`), never rebuilt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from datasets import DatasetDict
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from hfnlp.errors import RecipeError

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<start>", "<end>"
# Ids 0..3 in this order; CaptionerConfig's defaults match them.
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)


@dataclass
class CaptionTokenizerConfig:
    """The ``tokenizer`` section of an image-captioning recipe.

    ``min_frequency``: words rarer than this in the train captions become ``<unk>`` (the tutorials use 5 for
    Flickr8k). ``vocab_size``: the most frequent words kept at most (special tokens included). ``max_length``:
    longest caption in tokens, ``<start>`` and ``<end>`` included; longer train captions are truncated and
    generation stops there.
    """

    min_frequency: int = 5
    vocab_size: int = 10000
    max_length: int = 40
    lowercase: bool = True

    def __post_init__(self) -> None:
        for name in ("min_frequency", "vocab_size"):
            if getattr(self, name) < 1:
                raise RecipeError(f"tokenizer.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_length < 3:
            raise RecipeError(
                f"tokenizer.max_length must be at least 3 (<start>, a word, <end>), got {self.max_length}"
            )

    def vocabulary_settings(self) -> dict[str, object]:
        """The settings that decide the vocabulary (a saved tokenizer is reusable only if these match)."""
        settings = dataclasses.asdict(self)
        settings.pop("max_length")
        return settings


def train_caption_tokenizer(config: CaptionTokenizerConfig, captions: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train the word-level caption tokenizer on ``captions`` (the train split's)."""
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("removed")]
    )
    trainer = trainers.WordLevelTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(captions, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A {EOS_TOKEN}",
        special_tokens=[(token, tokenizer.token_to_id(token)) for token in (BOS_TOKEN, EOS_TOKEN)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        model_max_length=config.max_length,
        padding_side="right",
        truncation_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )


def encode_captions(splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, offsets: dict[str, int]) -> DatasetDict:
    """One row per caption (train on every caption): ``image_index``, ``input_ids`` and ``length``."""

    def explode(captions: list[list[str]], indices: list[int], offset: int) -> dict[str, list]:
        texts = [text for image_captions in captions for text in image_captions]
        image_index = [offset + i for i, image_captions in zip(indices, captions, strict=True) for _ in image_captions]
        input_ids = tokenizer(texts, truncation=True)["input_ids"]
        return {"image_index": image_index, "input_ids": input_ids, "length": [len(ids) for ids in input_ids]}

    return DatasetDict(
        {
            split: splits[split].map(
                explode,
                batched=True,
                with_indices=True,
                input_columns=["captions"],
                remove_columns=splits[split].column_names,
                fn_kwargs={"offset": offsets[split]},
                desc=f"tokenizing {split} captions",
            )
            for split in ("train", "validation")
            if split in splits
        }
    )
