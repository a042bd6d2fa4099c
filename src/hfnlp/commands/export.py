"""``hfnlp export RUN [--checkpoint N] [--onnx] [--output DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from hfnlp.errors import HfnlpError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="build a run's complete model folder (model card included), from its final model or a checkpoint"
    )
    parser.add_argument(
        "run", help="local run folder (the output_dir of hfnlp train); a Hub model is already a complete folder"
    )
    parser.add_argument(
        "--checkpoint", type=int, metavar="N", help="build the folder from checkpoint-N (default: the final model/)"
    )
    parser.add_argument(
        "--onnx", action="store_true", help="also write onnx/model.onnx, checked against PyTorch (text classifiers)"
    )
    parser.add_argument(
        "--output", help="where to build the folder (default: RUN/model, or RUN/export/checkpoint-N with --checkpoint)"
    )
    parser.set_defaults(handler=export)


def export(args: argparse.Namespace) -> int:
    from hfnlp.hub import export_model_folder
    from hfnlp.pipelines.loading import check_model_folder
    from hfnlp.training.run_folder import RunFolder

    if not Path(args.run).is_dir():
        raise HfnlpError(
            f"run folder not found: {args.run}; export builds a model folder from a local training run (a Hub model "
            "id is already a complete model folder: predict, evaluate, caption and push take it as it is)"
        )
    run = RunFolder(args.run)
    source = run.model_dir if args.checkpoint is None else run.checkpoint_dir(args.checkpoint)
    if (source / "config.json").is_file():  # a missing one is reported by export_model_folder, with the choices
        # A checkpoint has no processors of its own: the export takes them from the run's tokenizer/ folder.
        check_model_folder(source, with_processors=args.checkpoint is None)
    folder = export_model_folder(args.run, checkpoint=args.checkpoint, output=args.output, onnx=args.onnx)
    print(f"model folder: {folder}")
    return 0
