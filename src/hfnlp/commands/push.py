"""``hfnlp push RUN_OR_MODEL --repo-id user/name [--private] [--revision BRANCH]``: a local folder, or a Hub model id
(copied to another repo)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("push", help="upload a run's (or any) model folder to the Hugging Face Hub")
    parser.add_argument(
        "path", metavar="RUN_OR_MODEL", help="run folder, its model/ folder, an exported folder, or a Hub model id"
    )
    parser.add_argument("--repo-id", required=True, help="Hub model repo, e.g. user/name (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--revision", help="branch to push to (created if missing; default: main)")
    parser.set_defaults(handler=push)


def push(args: argparse.Namespace) -> int:
    from hfnlp.hub import locate_model_folder, push_model_folder, render_model_card
    from hfnlp.pipelines.loading import check_model_folder, resolve_model_folder

    # A local path keeps its run (the card comes from it); anything else is a Hub id, resolved as every command does.
    local = Path(args.path).exists()
    model_dir, card_source = locate_model_folder(args.path if local else resolve_model_folder(args.path))
    check_model_folder(model_dir)  # never publish a folder that cannot be loaded
    # The card's usage snippet should load the repo it is pushed to; the local README.md stays as it is.
    readme = render_model_card(card_source, repo_id=args.repo_id) if card_source is not None else None
    url = push_model_folder(model_dir, args.repo_id, private=args.private, revision=args.revision, readme=readme)
    print(f"pushed {model_dir} to {args.repo_id}: {url}")
    return 0
