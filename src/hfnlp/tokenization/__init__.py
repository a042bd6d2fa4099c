"""Tokenization: tokenizers trained once per run (char / word / jieba / BPE / WordPiece), pretrained vectors."""
