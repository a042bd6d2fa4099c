"""``hfnlp predict MODEL "text" ...`` and ``--input FILE --output preds.jsonl``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hfnlp.errors import HfnlpError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="classify texts with a saved model (or a run folder)")
    parser.add_argument("model", help="saved model folder, run folder, or Hub id")
    parser.add_argument("texts", nargs="*", help="texts to classify")
    parser.add_argument("--input", help=".txt (one text a line), .csv, .tsv, .json or .jsonl file")
    parser.add_argument("--text-column", default="text", help="text column of a .csv/.json input (default: text)")
    parser.add_argument("--output", help="write predictions as JSON lines here (default: print)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model folder's own code")
    parser.set_defaults(handler=predict)


def predict(args: argparse.Namespace) -> int:
    from hfnlp.pipelines.text_classification import classify, load_text_classifier

    texts = list(args.texts) + (read_input_texts(Path(args.input), args.text_column) if args.input else [])
    if not texts:
        raise HfnlpError("give texts to classify, or --input FILE")
    classifier = load_text_classifier(args.model, trust_remote_code=args.trust_remote_code)
    predictions = classify(classifier, texts, batch_size=args.batch_size)
    lines = [
        json.dumps({"text": text, "label": p["label"], "score": round(float(p["score"]), 6)}, ensure_ascii=False)
        for text, p in zip(texts, predictions, strict=True)
    ]
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {len(lines)} predictions to {args.output}")
    else:
        print("\n".join(lines))
    return 0


def read_input_texts(path: Path, text_column: str) -> list[str]:
    """Texts from a prediction input file: one per line for ``.txt``, a column for tabular/JSON files."""
    if not path.is_file():
        raise HfnlpError(f"input file not found: {path}")
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as error:
            raise HfnlpError(f"{path}: not valid UTF-8 ({error.reason})") from error
        return [line for line in lines if line.strip()]
    from hfnlp.data.text import TextDataConfig, read_text_file

    dataset = read_text_file(path, TextDataConfig(train_file=str(path), text_column=text_column))
    if text_column not in dataset.column_names:
        raise HfnlpError(f"{path}: no column {text_column!r}; columns are {', '.join(dataset.column_names)}")
    return dataset[text_column]
