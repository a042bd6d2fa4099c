"""``hfnlp demo MODEL``: a Gradio page for a saved model, served on this machine or written as a Space folder."""

from __future__ import annotations

import argparse

from hfnlp.commands._checks import at_least_one


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="serve a web page that tries a model (or write it as a Hugging Face Space)",
        description="Serve a Gradio page for a model: a text classifier shows every label's probability and the "
        "text highlighted by how much each token raised or lowered the top label; an image classifier its classes' "
        "probabilities; a captioner the caption and where each word looked. With --space DIR, write a ready "
        "Hugging Face Space folder instead (app.py, requirements.txt, README.md, the model), which runs without "
        "hfnlp.",
    )
    parser.add_argument("model", help="saved model folder, run folder, or Hub id")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1, this machine)")
    parser.add_argument("--port", type=int, help="port to serve on (default: Gradio's, 7860, or the next free one)")
    parser.add_argument("--space", metavar="DIR", help="write a Space folder to DIR (new or empty) and exit")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model folder's own code")
    parser.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    from hfnlp.demo import load_demo, write_space

    if args.port is not None:
        at_least_one(args.port, "--port")
    if args.space:
        folder = write_space(args.model, args.space)
        print(f"wrote a Space to {folder}: try it with `cd {folder} && python app.py`; upload the folder as a Space")
        return 0
    page = load_demo(args.model, trust_remote_code=args.trust_remote_code)
    page.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False)
    return 0
