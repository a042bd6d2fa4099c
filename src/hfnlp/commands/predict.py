"""``hfnlp predict MODEL "text" ...`` and ``--input FILE --output preds.jsonl``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hfnlp.commands._checks import at_least_one, check_output_file
from hfnlp.errors import HfnlpError

# Characters that str.splitlines and JavaScript take for line breaks although JSON leaves them unescaped: escaped,
# so that every reader of the output sees one prediction a line.
LINE_SEPARATORS = str.maketrans({"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify texts with a saved model (or a run folder)",
        description="Classify texts. Each prediction is one JSON line with the text, its label and score; a text "
        'read from --input also carries its place there: "line": N for a .txt file, "row": N for a table, '
        'counted from 1. An empty or blank text gets "label": null and "score": null, so that prediction N '
        "always belongs to input N.",
    )
    parser.add_argument("model", help="saved model folder, run folder, or Hub id")
    parser.add_argument("texts", nargs="*", help="texts to classify (or --input)")
    parser.add_argument(
        "--input",
        help="file of texts, read by its extension: .txt (one text a line, split at line feeds only; blank lines "
        "kept, with a null label), .csv, .tsv, .json, .jsonl or .parquet (the --text-column of each row)",
    )
    parser.add_argument(
        "--text-column",
        action="append",
        dest="text_columns",
        help="text column of a table --input; repeat it for several, joined one per line as in training (default: "
        "the columns the model was trained on, if the table has them, else text)",
    )
    parser.add_argument("--output", help="write the predictions as JSON lines to this file (default: print them)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per forward pass, at least 1 (default: 64)")
    parser.add_argument(
        "--explain",
        action="store_true",
        help='add "attributions" to each prediction: the spans of the text ({"text", "start", "end", "score"}, '
        "character offsets) and how much each raised (positive) or lowered the label's probability",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model folder's own code")
    parser.set_defaults(handler=predict)


def predict(args: argparse.Namespace) -> int:
    from hfnlp.pipelines.text_classification import (
        classify,
        load_text_model,
        read_input_texts,
        trained_text_columns,
    )
    from hfnlp.training.atomic import write_text

    if args.texts and args.input:
        raise HfnlpError("give texts to classify or --input FILE, not both")
    at_least_one(args.batch_size, "--batch-size")
    output = check_output_file(args.output, "--output") if args.output else None
    if args.input:
        trained = trained_text_columns(args.model) if not args.text_columns else []
        index_key, texts = read_input_texts(Path(args.input), args.text_columns, trained)
    else:
        index_key, texts = None, args.texts
    if not texts:
        raise HfnlpError(
            f"{args.input}: no texts in the file" if args.input else "give texts to classify, or --input FILE"
        )
    classifier = load_text_model(args.model, trust_remote_code=args.trust_remote_code)
    predictions = classify(classifier, texts, batch_size=args.batch_size, explain=args.explain)
    lines = []
    for number, (text, prediction) in enumerate(zip(texts, predictions, strict=True), start=1):
        row = {index_key: number} if index_key else {}
        row |= {
            "text": text,
            "label": prediction["label"] if prediction else None,
            "score": round(float(prediction["score"]), 6) if prediction else None,
        }
        if args.explain:
            row["attributions"] = (
                [span | {"score": round(span["score"], 6)} for span in prediction["attributions"]] if prediction else []
            )
        lines.append(json_line(row))
    if output is not None:
        write_text(output, "\n".join(lines) + "\n")
        print(f"wrote {len(lines)} predictions to {output}")
    else:
        print("\n".join(lines))
    return 0


def json_line(row: dict) -> str:
    """``row`` as one line of JSON (UTF-8 text kept readable), with no character any reader splits lines at."""
    return json.dumps(row, ensure_ascii=False).translate(LINE_SEPARATORS)
