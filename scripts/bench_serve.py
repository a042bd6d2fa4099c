"""Load test of ``hfnlp serve``: requests/s and latency at 1, 8 and 64 concurrent clients, batching on vs off.

    python scripts/bench_serve.py                        # trains a small quickstart model first
    python scripts/bench_serve.py --model runs/quickstart --requests 2000 --time-cap 60

The server runs in its own process on a free loopback port (``hfnlp serve MODEL --port 0``, once with dynamic
batching and once with ``--no-batching``); httpx async clients send one text per request, each client its next
request as soon as its last one is answered, until ``--requests`` are answered or ``--time-cap`` seconds pass.
Prints a Markdown table: clients, batching, requests/s, p50 and p99 latency in ms; then the same load on the batcher
alone, in this process without HTTP (what the model side gains from batching, apart from the HTTP stack's cost).
Texts are the model's test split when its folder holds the recipe. One benchmark at a time: on a shared machine
numbers move with other jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import train_quickstart  # noqa: E402  (a sibling script: the same quickstart model)

CLIENTS = (1, 8, 64)
SAMPLE_TEXTS = ["质量很好，物流也快", "太差了，再也不买", "还行吧，一般般", "非常满意，推荐购买"]


def test_texts(model: str) -> list[str]:
    """The test split of the data the model was trained on, when its folder holds the recipe; else a few texts."""
    from hfnlp.data.text import load_text_classification
    from hfnlp.pipelines.loading import resolve_model_folder
    from hfnlp.tasks import load_recipe

    recipe_path = resolve_model_folder(model) / "recipe.yaml"
    if not recipe_path.is_file():
        return SAMPLE_TEXTS
    recipe = load_recipe(recipe_path)
    return list(load_text_classification(recipe.data, seed=recipe.seed).splits["test"]["text"]) or SAMPLE_TEXTS


async def batcher_load_test(predictor, texts: list[str], clients: int, batching: bool, args) -> tuple:
    """``clients`` coroutines sending one text at a time straight to a :class:`Batcher` (no HTTP)."""
    from hfnlp.serving.batching import Batcher

    batcher = Batcher(predictor, args.max_batch_size, args.max_wait_ms, batching)
    await batcher.start()
    numbers, latencies = iter(range(args.requests)), []

    async def client() -> None:
        for number in numbers:
            sent = time.perf_counter()
            await batcher.predict([texts[number % len(texts)]])
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await batcher.stop()
    milliseconds = np.array(latencies) * 1000
    return len(latencies) / elapsed, np.percentile(milliseconds, 50), np.percentile(milliseconds, 99), len(latencies)


def start_server(model: str, token: str, log: Path, batching: bool, args: argparse.Namespace) -> subprocess.Popen:
    """``hfnlp serve`` on a free loopback port, its log in ``log`` (a pipe would fill up and stall it)."""
    command = [sys.executable, "-m", "hfnlp", "serve", model, "--port", "0", "--max-batch-size",
               str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)]  # fmt: skip
    if not batching:
        command.append("--no-batching")
    env = os.environ | {"HFNLP_SERVE_TOKEN": token, "OMP_NUM_THREADS": str(args.threads)}
    with log.open("w") as handle:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=handle, env=env)


def wait_until_ready(process: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    """The server's base URL once ``/health`` says it is ready."""
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"hfnlp serve exited with status {process.returncode}:\n{log.read_text()}")
        found = re.search(r" on (http://\S+) ", log.read_text())
        url = url or (found.group(1) if found else None)
        if url:
            try:
                if httpx.get(f"{url}/health").json().get("ready"):
                    return url
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"hfnlp serve did not become ready within {timeout:.0f} s:\n{log.read_text()}")


async def load_test(url: str, token: str, texts: list[str], clients: int, requests: int, cap: float) -> tuple:
    """``(requests/s, p50 ms, p99 ms, answered)`` with ``clients`` concurrent clients sending ``requests``
    requests in all, or as many as ``cap`` seconds allow."""
    latencies: list[float] = []
    sent = 0
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=cap + 30) as client:
        await client.post("/predict", json={"inputs": texts[0]})  # warm-up
        began = time.perf_counter()
        stop_at = began + cap

        async def one_client() -> None:
            nonlocal sent
            while sent < requests and time.perf_counter() < stop_at:
                text = texts[sent % len(texts)]
                sent += 1
                start = time.perf_counter()
                response = await client.post("/predict", json={"inputs": text})
                response.raise_for_status()
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    milliseconds = np.array(latencies) * 1000
    return len(latencies) / elapsed, np.percentile(milliseconds, 50), np.percentile(milliseconds, 99), len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder, run folder or Hub id (default: train a small quickstart model)")
    parser.add_argument("--train-steps", type=int, default=150, help="training steps without --model")
    parser.add_argument("--requests", type=int, default=1000, help="requests per level (clients × batching)")
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per level at most")
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)), help="concurrent clients per level")
    parser.add_argument("--max-batch-size", type=int, default=32, help="the server's --max-batch-size")
    parser.add_argument("--max-wait-ms", type=float, default=0.0, help="the server's --max-wait-ms")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads (OMP_NUM_THREADS)")
    args = parser.parse_args()
    levels = [int(value) for value in args.clients.split(",")]
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        model = args.model or str(train_quickstart(Path(scratch) / "run", args.train_steps))
        texts = test_texts(model)
        token = secrets.token_urlsafe(32)
        for batching in (True, False):
            log = Path(scratch) / f"serve-{batching}.log"
            process = start_server(model, token, log, batching, args)
            try:
                url = wait_until_ready(process, log)
                for clients in levels:
                    result = asyncio.run(load_test(url, token, texts, clients, args.requests, args.time_cap))
                    rows.append((clients, batching, *result))
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)
        import torch

        from hfnlp.serving.predictors import load_predictor

        torch.set_num_threads(args.threads)
        predictor = load_predictor(model)
        alone = [
            (clients, batching, *asyncio.run(batcher_load_test(predictor, texts, clients, batching, args)))
            for batching in (True, False)
            for clients in levels
        ]

    print(f"\nmodel: {args.model or 'quickstart'}; max batch {args.max_batch_size}, max wait {args.max_wait_ms} ms, "
          f"{args.threads} server thread(s); up to {args.requests} requests or {args.time_cap:.0f} s per level; "
          f"load average (1 min) {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    for title, table in (("over HTTP", rows), ("the batcher alone, no HTTP", alone)):
        print(f"\n{title}\n")
        print("| clients | batching | requests/s | p50 ms | p99 ms | requests |")
        print("| ---: | --- | ---: | ---: | ---: | ---: |")
        for clients, batching, throughput, p50, p99, answered in sorted(table):
            on = "on" if batching else "off"
            print(f"| {clients} | {on} | {throughput:,.1f} | {p50:.1f} | {p99:.1f} | {answered} |")


if __name__ == "__main__":
    main()
