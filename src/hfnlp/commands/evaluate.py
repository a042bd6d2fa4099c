"""``hfnlp evaluate MODEL --data FILE``: metrics and per-class report of a saved model on any labelled file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate a saved text classifier on a labelled file")
    parser.add_argument("model", help="saved model folder or run folder")
    parser.add_argument("--data", required=True, help="labelled file (csv/tsv/json/jsonl/parquet) or label folder")
    parser.add_argument("--format", default="auto", help="file format (default: from the extension)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--column-names", help="comma-separated column names for a header-less file")
    parser.add_argument("--bad-rows", choices=["error", "skip"], default="error")
    parser.add_argument("--output-dir", help="write the report and confusion matrix here")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model folder's own code")
    parser.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    from hfnlp.data.text import TextDataConfig, read_text_file, validate_text_split
    from hfnlp.pipelines.text_classification import classify, load_text_classifier
    from hfnlp.training.reports import classification_scores, format_report, write_classification_report

    classifier = load_text_classifier(args.model, trust_remote_code=args.trust_remote_code)
    label_names = [classifier.model.config.id2label[i] for i in range(classifier.model.config.num_labels)]
    config = TextDataConfig(
        train_file=args.data,
        format=args.format,
        text_column=args.text_column,
        label_column=args.label_column,
        column_names=args.column_names.split(",") if args.column_names else None,
        label_names=label_names,
        bad_rows=args.bad_rows,
    )
    dataset, skipped = validate_text_split(read_text_file(args.data, config), config, label_names, "evaluation")
    predictions = classify(classifier, dataset["text"], batch_size=args.batch_size)
    predicted_ids = [classifier.model.config.label2id[p["label"]] for p in predictions]
    scores = classification_scores(predicted_ids, dataset["label"], label_names)
    if args.output_dir:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        write_classification_report(args.output_dir, scores, label_names)
    print(format_report(scores, label_names), end="")
    summary = {k: round(float(scores[k]), 4) for k in ("accuracy", "macro_f1")} | {
        "rows": len(dataset),
        "skipped": skipped,
    }
    print(json.dumps(summary))
    return 0
