"""``hfnlp evaluate MODEL --data FILE``: metrics and per-class report of a saved model on any labelled file."""

from __future__ import annotations

import argparse
import json

from hfnlp.commands._checks import at_least_one, check_output_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate a saved text classifier on a labelled file")
    parser.add_argument("model", help="saved model folder, run folder, or Hub id")
    parser.add_argument(
        "--data",
        required=True,
        help="labelled file (csv/tsv/txt as tsv/json/jsonl/parquet) or label folder; every label must be one the "
        "model knows",
    )
    parser.add_argument("--format", default="auto", help="file format (default: from the extension)")
    parser.add_argument(
        "--text-column",
        action="append",
        dest="text_columns",
        help="text column; repeat it for several, joined one per line as in training (default: text)",
    )
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--column-names", help="comma-separated column names for a header-less file")
    parser.add_argument(
        "--bad-rows", choices=["error", "skip"], default="error", help="rows without a text or label: stop or skip"
    )
    parser.add_argument("--output-dir", help="write the report and confusion matrix in this folder (created)")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per forward pass, at least 1")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model folder's own code")
    parser.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    from hfnlp.data.text import TextDataConfig, read_text_file, validate_text_split
    from hfnlp.pipelines.text_classification import check_labels_known, classify, load_text_model
    from hfnlp.training.reports import classification_scores, format_report, write_classification_report

    at_least_one(args.batch_size, "--batch-size")
    output_dir = check_output_dir(args.output_dir, "--output-dir") if args.output_dir else None
    classifier = load_text_model(args.model, trust_remote_code=args.trust_remote_code)
    label_names = [classifier.model.config.id2label[i] for i in range(classifier.model.config.num_labels)]
    config = TextDataConfig(
        train_file=args.data,
        format=args.format,
        text_column=args.text_columns or "text",
        label_column=args.label_column,
        column_names=args.column_names.split(",") if args.column_names else None,
        label_names=label_names,
        bad_rows=args.bad_rows,
    )
    raw = read_text_file(args.data, config)
    check_labels_known(raw, args.label_column, label_names, args.data)
    dataset, skipped = validate_text_split(raw, config, label_names, "evaluation")
    predictions = classify(classifier, dataset["text"], batch_size=args.batch_size)
    predicted_ids = [classifier.model.config.label2id[p["label"]] for p in predictions]
    scores = classification_scores(predicted_ids, dataset["label"], label_names)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_classification_report(output_dir, scores, label_names)
    print(format_report(scores, label_names), end="")
    summary = {k: round(float(scores[k]), 4) for k in ("accuracy", "macro_f1")} | {
        "rows": len(dataset),
        "skipped": skipped,
    }
    print(json.dumps(summary))
    return 0
