"""Speed of hfnlp against the tutorials' naive training loop, on the same data, models and hyperparameters.

For each model (TextCNN, BiLSTM and fastText on THUCNews; the Show-Attend-Tell captioner on cached Flickr8k
features), hfnlp's own path (``datasets`` + ``tokenizers`` + ``Trainer``, as ``hfnlp train`` runs the recipe) and
the naive reference (``scripts/naive_reference.py``: Python tokenization, fixed padding, plain ``DataLoader``)
each run in a fresh subprocess with the same thread settings; the table gives tokenization throughput, training
samples/s and epoch time, evaluation samples/s, peak memory, and the test score of each after the same number of
epochs, then the hfnlp / naive ratios.

    python scripts/bench_speed.py                                   # all models, 3 epochs, 1 thread
    python scripts/bench_speed.py --models textcnn,bilstm --epochs 1 --threads 2
    python scripts/bench_speed.py --limit 2000 --epochs 1           # quick smoke run on 2,000 rows per split

Timings depend on the load of the machine: ``--threads`` (default 1) fixes torch's intra-op threads, OpenMP's,
MKL's and the tokenizers' Rust pool in every subprocess; on an oversubscribed machine more threads than free cores
makes OpenMP spin-wait and is many times slower.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
TEXT_MODELS = {"textcnn": "thucnews-textcnn", "bilstm": "thucnews-textrnn", "fasttext": "thucnews-fasttext"}
CAPTION_RECIPE = "flickr8k-attention"
ALL_MODELS = [*TEXT_MODELS, "captioner"]
IMPLEMENTATIONS = ("hfnlp", "naive")


@dataclass
class Job:
    """One measured run: which implementation trains which model, with which settings."""

    implementation: str
    model: str
    recipe: dict[str, Any]
    epochs: int
    threads: int
    data_dir: str
    limit: int | None
    feature_cache: str


# ---------------------------------------------------------------- orchestration (parent process)


def resolved_recipe(name: str, data_root: Path, overrides: list[str]) -> dict[str, Any]:
    """The recipe ``recipes/<name>.yaml`` with every default filled in, as plain data."""
    from hfnlp.tasks import load_recipe

    recipe = load_recipe(REPO / "recipes" / f"{name}.yaml", overrides).to_dict()
    data = recipe["data"]
    for key in ("train_file", "validation_file", "test_file", "label_file", "captions_file", "images_dir"):
        if data.get(key):
            data[key] = str(_rebase(data[key], data_root))
    return recipe


def _rebase(path: str, data_root: Path) -> Path:
    # Recipes name ../shared/data/...; --data-root points elsewhere when the data lives elsewhere.
    parts = Path(path).parts
    if "data" in parts:
        return data_root.joinpath(*parts[parts.index("data") + 1 :])
    return (REPO / path).resolve()


def limited_thucnews(recipe: dict[str, Any], limit: int, folder: Path) -> dict[str, Any]:
    """A copy of ``recipe`` reading a seeded random ``limit`` rows of each split (the test file is sorted by label,
    so the first rows would be one or two classes)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = dict(recipe["data"])
    for key in ("train_file", "validation_file", "test_file"):
        lines = Path(data[key]).read_text(encoding="utf-8").splitlines(keepends=True)
        sample = random.Random(0).sample(lines, min(limit, len(lines)))
        target = folder / Path(data[key]).name
        target.write_text("".join(sample), encoding="utf-8")
        data[key] = str(target)
    return {**recipe, "data": data}


def run_job(job: Job, workdir: Path) -> dict[str, Any]:
    """Run ``job`` in a fresh Python process with the thread settings in its environment; return its result."""
    job_file, result_file = workdir / "job.json", workdir / "result.json"
    job_file.write_text(json.dumps(job.__dict__))
    threads = str(job.threads)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "RAYON_NUM_THREADS": threads,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        # a fresh datasets cache: tokenization is measured as in a first run, never read back from a cache
        "HF_DATASETS_CACHE": str(workdir / "datasets-cache"),
    }
    command = [sys.executable, __file__, "--worker", str(job_file), str(result_file)]
    loads: list[float] = []
    with (workdir / "worker.log").open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        while process.poll() is None:  # the machine's load while this run lasts, sampled every 10 s
            loads.append(os.getloadavg()[0])
            time.sleep(10)
    load = {"load_mean": round(sum(loads) / max(len(loads), 1), 2), "load_max": round(max(loads, default=0.0), 2)}
    if process.returncode != 0:
        tail = (workdir / "worker.log").read_text(errors="replace").splitlines()[-15:]
        return {"error": f"exit status {process.returncode}", "log_tail": tail, **load}
    return {**json.loads(result_file.read_text()), **load}


def summarise(result: dict[str, Any]) -> dict[str, float]:
    """The table's numbers from a worker's raw result."""
    if "error" in result:
        return {}
    epochs = result["epoch_seconds"]
    return {
        "tokenize rows/s": result["tokenize_rows"] / result["tokenize_seconds"],
        "train samples/s": result["train_rows"] * len(epochs) / sum(epochs),
        "epoch s": sum(epochs) / len(epochs),
        "eval samples/s": result["eval_rows"] * len(result["eval_seconds"]) / sum(result["eval_seconds"]),
        "peak MiB": result["peak_rss_mib"],
        "score": result["score"],
        "load": result["load_mean"],
    }


def format_tables(rows: list[dict[str, Any]]) -> str:
    """Markdown tables: each run's measurements, then hfnlp / naive ratios per model."""
    columns = ["tokenize rows/s", "train samples/s", "epoch s", "eval samples/s", "peak MiB", "score", "load"]
    lines = [
        "| model | implementation | setup | " + " | ".join(columns) + " | test metric |",
        "|---" * (len(columns) + 4) + "|",
    ]
    for row in rows:
        numbers, raw = row["summary"], row["raw"]
        cells = [_format(column, numbers.get(column)) for column in columns] if numbers else ["FAILED"] * len(columns)
        setup = ", ".join(
            str(part)
            for part in (f"{len(raw.get('epoch_seconds', []))} ep", raw.get("precision"), raw.get("batching"))
            if part
        )
        lines.append(
            f"| {row['model']} | {row['implementation']} | {setup} | " + " | ".join(cells) + f" | {row['metric']} |"
        )
    lines += [
        "",
        "| model | tokenization × | training epoch × | time to naive's best validation × | evaluation × "
        "| peak memory × | score Δ (hfnlp − naive) |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["implementation"]] = row
    for model, runs in by_model.items():
        ours, naive = (runs[name]["summary"] if name in runs else None for name in IMPLEMENTATIONS)
        if not ours or not naive:
            lines.append(f"| {model} | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        target = runs["naive"]["raw"].get("best_validation")
        to_target = [seconds_to_reach(runs[name]["raw"], target) for name in IMPLEMENTATIONS]
        cells = [
            f"{ours['tokenize rows/s'] / naive['tokenize rows/s']:.2f}×",
            f"{naive['epoch s'] / ours['epoch s']:.2f}×",
            _time_ratio(to_target, runs),
            f"{ours['eval samples/s'] / naive['eval samples/s']:.2f}×",
            f"{ours['peak MiB'] / naive['peak MiB']:.2f}×",
            f"{ours['score'] - naive['score']:+.4f}",
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _time_ratio(to_target: list[float | None], runs: dict[str, dict[str, Any]]) -> str:
    if any("validation_per_epoch" not in runs[name]["raw"] for name in IMPLEMENTATIONS):
        return "n/a"
    return f"{to_target[1] / to_target[0]:.2f}×" if None not in to_target else "not reached"


def seconds_to_reach(result: dict[str, Any], accuracy: float | None) -> float | None:
    """Training seconds (evaluation excluded) until the first epoch whose validation accuracy is at least
    ``accuracy``; ``None`` if no epoch reached it (or the run kept no per-epoch accuracies)."""
    per_epoch = result.get("validation_per_epoch") or []
    if accuracy is None:
        return None
    for epoch, reached in enumerate(per_epoch):
        if reached >= accuracy - 1e-9:
            return sum(result["epoch_seconds"][: epoch + 1])
    return None


def _format(column: str, value: float | None) -> str:
    if value is None:
        return ""
    if column == "score":
        return f"{value:.4f}"
    if column == "load":
        return f"{value:.1f}"
    if column == "epoch s":
        return f"{value:.1f}"
    return f"{value:,.0f}"


def environment(threads: int) -> dict[str, Any]:
    """Date, hardware, load and versions, recorded with the results."""
    import datasets
    import tokenizers
    import torch
    import transformers

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "tokenizers": tokenizers.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(ALL_MODELS), help=f"comma-separated from {ALL_MODELS}")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the text models (default 3)")
    parser.add_argument(
        "--hfnlp-epochs",
        type=int,
        help="training epochs of hfnlp's text runs (default: --epochs); more than the naive loop's shows how soon "
        "hfnlp reaches the naive loop's best validation accuracy",
    )
    parser.add_argument("--caption-epochs", type=int, default=1, help="training epochs of the captioner (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP / MKL / tokenizers threads (default 1)")
    parser.add_argument("--limit", type=int, help="rows per split (images for the captioner), for a quick smoke run")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS), help="hfnlp, naive or both")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--output", type=Path, help="JSON file for the raw results (default runs/bench_speed/)")
    parser.add_argument(
        "--micro",
        help=f"run micro-benchmarks of hfnlp's training step instead: 'all' or some of {MICRO_BENCHMARKS}",
    )
    parser.add_argument("--micro-steps", type=int, default=20, help="training steps timed per micro-benchmark variant")
    parser.add_argument(
        "--feature-cache",
        type=Path,
        default=REPO / "runs" / "bench_speed" / "features",
        help="where the captioner's encoder feature maps are cached between benchmark runs",
    )
    args = parser.parse_args()
    if args.micro:
        names = list(MICRO_BENCHMARKS) if args.micro == "all" else [n.strip() for n in args.micro.split(",")]
        if set(names) - set(MICRO_BENCHMARKS):
            parser.error(f"unknown micro-benchmark(s) {sorted(set(names) - set(MICRO_BENCHMARKS))}")
        print(json.dumps(environment(args.threads)), flush=True)
        print(run_micro(names, args.threads, args.micro_steps, args.data_root))
        return
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(ALL_MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {ALL_MODELS}")
    implementations = [i.strip() for i in args.implementations.split(",") if i.strip()]
    output = args.output or REPO / "runs" / "bench_speed" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    env_before = environment(args.threads)
    print(json.dumps(env_before), flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_speed-") as scratch:
        scratch_dir = Path(scratch)
        for model in models:
            name = TEXT_MODELS.get(model, CAPTION_RECIPE)
            recipe = resolved_recipe(name, args.data_root, [])
            if args.limit and model in TEXT_MODELS:
                recipe = limited_thucnews(recipe, args.limit, scratch_dir / "data")
            for implementation in implementations:
                epochs = args.epochs if model in TEXT_MODELS else args.caption_epochs
                if model in TEXT_MODELS and implementation == "hfnlp" and args.hfnlp_epochs:
                    epochs = args.hfnlp_epochs
                workdir = scratch_dir / f"{model}-{implementation}"
                workdir.mkdir()
                job = Job(
                    implementation,
                    model,
                    recipe,
                    epochs,
                    args.threads,
                    str(workdir),
                    args.limit,
                    str(args.feature_cache),
                )
                started = time.time()
                result = run_job(job, workdir)
                row = {
                    "model": model,
                    "implementation": implementation,
                    "metric": result.get("metric", ""),
                    "summary": summarise(result),
                    "raw": result,
                    "recipe": recipe,
                    "run_seconds": round(time.time() - started, 1),
                }
                rows.append(row)
                print(f"{model}/{implementation}: {json.dumps(row['summary'] or result)}", flush=True)
                report = {
                    "environment": env_before,
                    "load_average_now": os.getloadavg(),
                    "epochs": args.epochs,
                    "hfnlp_epochs": args.hfnlp_epochs or args.epochs,
                    "caption_epochs": args.caption_epochs,
                    "limit": args.limit,
                    "rows": rows,
                }
                output.write_text(json.dumps(report, indent=2, ensure_ascii=False))  # after every run: nothing lost
    print()
    print(format_tables(rows))
    print(f"\nraw results: {output}")


# ---------------------------------------------------------------- micro-benchmarks (in this process)

MICRO_BENCHMARKS = (
    "profile",
    "tokenization",
    "threads",
    "optimizer",
    "sparse",
    "batching",
    "packing",
    "compile",
    "data",
    "versus_naive",
)


@dataclass
class MicroSetup:
    """THUCNews train encoded by hfnlp, with hfnlp's tokenizer, collator and models of the three recipes."""

    train: Any
    collator: Any
    recipes: dict[str, Any]
    tokenizer: Any
    label_names: list[str]
    splits: Any

    @classmethod
    def load(cls, data_root: Path, models: dict[str, str] = TEXT_MODELS) -> MicroSetup:
        """Tokenize the train split of the first of ``models`` (name: recipe; by default THUCNews' three) with hfnlp
        and prepare its collator."""
        from transformers import DataCollatorWithPadding

        from hfnlp.data.text import load_text_classification
        from hfnlp.tasks import recipe_from_dict
        from hfnlp.tasks.text_classification import encode_splits
        from hfnlp.tokenization.text import train_tokenizer

        recipes = {model: recipe_from_dict(resolved_recipe(name, data_root, [])) for model, name in models.items()}
        recipe = next(iter(recipes.values()))
        data = load_text_classification(recipe.data, seed=recipe.seed)
        tokenizer = train_tokenizer(recipe.tokenizer, data.splits["train"]["text"])
        train = encode_splits(data.splits, tokenizer, recipe.tokenizer.max_length)["train"]
        return cls(train, DataCollatorWithPadding(tokenizer), recipes, tokenizer, data.label_names, data.splits)

    def model(self, name: str) -> Any:
        """A fresh hfnlp model of recipe ``name``, seeded."""
        import torch

        from hfnlp.tasks.text_classification import build_text_model

        torch.manual_seed(0)
        return build_text_model(self.recipes[name], self.tokenizer, self.label_names)

    def order(self, sampling: str, batch_size: int = 128) -> list[int]:
        """Row order of one epoch: hfnlp's length buckets (``training.group_by_length``) or a random permutation."""
        import torch

        from hfnlp.training.batching import LengthBucketSampler

        if sampling == "grouped":
            return list(LengthBucketSampler(self.train["length"], batch_size, seed=0))
        return torch.randperm(len(self.train), generator=torch.Generator().manual_seed(0)).tolist()

    def batches(self, sampling: str, count: int, batch_size: int = 128, pad_to: int | None = None) -> list[dict]:
        """``count`` batches spread evenly over an epoch, collated as Trainer collates them, or padded to
        ``pad_to``."""
        order = self.order(sampling, batch_size)
        rows = self.train.remove_columns("length")
        full_batches = len(order) // batch_size
        batches = []
        for start in (batch_size * (k * full_batches // count) for k in range(count)):
            features = [rows[i] for i in order[start : start + batch_size]]
            if pad_to:
                batch = self.collator.tokenizer.pad(
                    features, padding="max_length", max_length=pad_to, return_tensors="pt"
                )
                batch["labels"] = batch.pop("label")
            else:
                batch = self.collator(features)
            batches.append(dict(batch))
        return batches


def training_step(model: Any, batches: list[dict], optimizer: Any = None) -> Callable[[int], None]:
    """A function running training step ``i`` (forward, backward, clipping at 1.0, AdamW step) on ``batches[i]``."""
    import torch

    model.train()
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(index: int) -> None:
        loss = model(**batches[index]).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def compare(variants: dict[str, Callable[[int], None]], steps: int, warmup: int = 2) -> dict[str, float]:
    """Median milliseconds per call of each variant, called in turn on the same step index (rotating which goes first)
    so that a change in the machine's load hits every variant alike."""
    import statistics

    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for index in range(steps):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            started = time.perf_counter()
            variants[name](index)
            if index >= warmup:
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def _with_threads(threads: int, step: Callable[[int], None]) -> Callable[[int], None]:
    import torch

    def run(index: int) -> None:
        torch.set_num_threads(threads)
        step(index)

    return run


def micro_profile(setup: MicroSetup, steps: int) -> list[tuple]:
    """``torch.profiler`` over ``steps`` training steps of each hfnlp model (random batches padded to their longest
    text, hfnlp's default): the operators with the most self CPU time, and the optimizer step's share (milliseconds
    are totals over the profiled steps)."""
    from torch.profiler import ProfilerActivity, profile

    rows = []
    batches = setup.batches("random", steps)
    for name in TEXT_MODELS:
        step = training_step(setup.model(name), batches)
        step(0)  # first-call allocations out of the profile
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for index in range(1, steps):
                step(index)
        events = profiler.key_averages()
        total = sum(event.self_cpu_time_total for event in events)
        optimizer = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step"))
        rows.append(("profile", name, "all operators", total / 1000, f"optimizer step {100 * optimizer / total:.0f}%"))
        for event in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:6]:
            share = 100 * event.self_cpu_time_total / total
            rows.append(("profile", name, event.key, event.self_cpu_time_total / 1000, f"{share:.0f}% self CPU"))
    return rows


def micro_tokenization(setup: MicroSetup, steps: int) -> list[tuple]:
    """Tokenizer training + encoding of every THUCNews split through ``datasets.map`` (as ``encode_splits`` runs it,
    caching off), against two variants that give the same ids, and the naive Python loop. Reported as ms per 1,000
    rows, the median of three interleaved runs; ``steps`` is unused."""
    import datasets
    import naive_reference as naive
    from tokenizers import models, pre_tokenizers

    from hfnlp.tasks.text_classification import encode_splits
    from hfnlp.tokenization.text import UNK_TOKEN, train_tokenizer, wrap_tokenizer

    datasets.disable_caching()
    config, splits = setup.recipes["textcnn"].tokenizer, setup.splits
    rows = sum(len(split) for split in splits.values())
    train_texts = splits["train"]["text"]

    def char_bpe(tokenizer: Any) -> Any:
        """The same vocabulary as a BPE model without merges: words fall apart into characters natively, so only
        white space needs splitting (no per-character regex)."""
        backend = tokenizer.backend_tokenizer
        backend.model = models.BPE(vocab=backend.get_vocab(), merges=[], unk_token=UNK_TOKEN)
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        return wrap_tokenizer(backend, config.max_length)

    def ids_only(tokenizer: Any) -> None:
        """``encode_splits`` calling the Rust tokenizer directly, keeping only ids and lengths (the collator makes
        the attention mask)."""
        backend = tokenizer.backend_tokenizer
        backend.enable_truncation(config.max_length)

        def encode(batch: dict[str, list]) -> dict[str, list]:
            ids = [encoding.ids for encoding in backend.encode_batch_fast(batch["text"], add_special_tokens=False)]
            return {"input_ids": ids, "length": [len(row) for row in ids]}

        return splits.map(encode, batched=True, batch_size=2000, remove_columns=["text"])

    def today() -> None:
        encode_splits(splits, train_tokenizer(config, train_texts), config.max_length)

    def naive_loop() -> None:
        vocab = naive.build_vocab(train_texts, config.vocab_size)
        for split in splits.values():
            naive.encode(split["text"], vocab, config.max_length)

    reference = encode_splits(splits, train_tokenizer(config, train_texts), config.max_length)
    for variant in (
        ids_only(train_tokenizer(config, train_texts)),
        ids_only(char_bpe(train_tokenizer(config, train_texts))),
    ):
        assert all(variant[name]["input_ids"] == reference[name]["input_ids"] for name in splits), "ids differ"
    variants = {
        "hfnlp today: train_tokenizer + encode_splits": today,
        "ids only (Rust encode_batch_fast, no attention_mask)": lambda: ids_only(train_tokenizer(config, train_texts)),
        "ids only + char vocabulary as BPE without merges": lambda: ids_only(
            char_bpe(train_tokenizer(config, train_texts))
        ),
        "naive: Python dict vocabulary and lookups": naive_loop,
    }
    timed = compare({name: lambda _, run=run: run() for name, run in variants.items()}, steps=3, warmup=0)
    return [
        ("tokenization", "char", name, ms / rows * 1000, f"{rows / ms * 1000:,.0f} rows/s")
        for name, ms in timed.items()
    ]


def micro_threads(setup: MicroSetup, steps: int) -> list[tuple]:
    """Step time with 1 and 2 intra-op threads: on a loaded machine OpenMP threads spin-wait for busy cores."""
    rows = []
    batches = setup.batches("random", steps)
    for name in ("textcnn", "bilstm"):
        variants = {
            f"{threads} thread(s)": _with_threads(threads, training_step(setup.model(name), batches))
            for threads in (1, 2)
        }
        rows += [("threads", name, variant, ms) for variant, ms in compare(variants, steps).items()]
    return rows


def micro_optimizer(setup: MicroSetup, steps: int) -> list[tuple]:
    """AdamW as Trainer builds it on CPU (``adamw_torch``: one tensor at a time), multi-tensor ``foreach`` and
    ``fused`` (``optim: adamw_torch_fused``): the whole training step, then the optimizer step alone."""
    import torch

    rows = []
    batches = setup.batches("random", steps)
    kinds = {"adamw_torch (default)": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    for name in ("fasttext", "textcnn"):
        models = {kind: setup.model(name) for kind in kinds}
        optimizers = {kind: torch.optim.AdamW(models[kind].parameters(), lr=1e-3, **kinds[kind]) for kind in kinds}
        whole = compare({kind: training_step(models[kind], batches, optimizers[kind]) for kind in kinds}, steps)
        alone = compare({kind: lambda _, o=optimizers[kind]: o.step() for kind in kinds}, max(steps // 2, 5))
        rows += [("optimizer", name, kind, whole[kind], f"optimizer.step alone {alone[kind]:.0f} ms") for kind in kinds]
    return rows


def micro_sparse(setup: MicroSetup, steps: int) -> list[tuple]:
    """The wide-MLP recipe (fastText with TF-IDF bags of exact char 1-3-grams, 500,000-row table) with dense
    embedding gradients and AdamW, against sparse gradients and hfnlp's LazyAdamW: whole training steps."""
    from hfnlp.tasks import recipe_from_dict
    from hfnlp.tasks.text_classification import build_text_model
    from hfnlp.training.optim import LazyAdamW

    batches = setup.batches("random", steps, batch_size=64)
    train_ids = list(setup.train["input_ids"])
    variants = {}
    for sparse in (False, True):
        recipe = resolved_recipe("thucnews-wide-mlp", DEFAULT_DATA_ROOT, [f"model.sparse_embeddings={sparse}"])
        model = build_text_model(recipe_from_dict(recipe), setup.tokenizer, setup.label_names)
        model.learn_from_training_data(train_ids)
        optimizer = LazyAdamW(model.parameters(), lr=1e-3) if sparse else None
        label = "sparse gradients, LazyAdamW (recipe)" if sparse else "dense gradients, AdamW"
        variants[label] = training_step(model, batches, optimizer)
    timed = compare(variants, steps)
    return [("sparse embeddings", "wide-mlp", label, ms, "") for label, ms in timed.items()]


def micro_batching(setup: MicroSetup, steps: int) -> list[tuple]:
    """Epoch time estimate (median step × steps per epoch) with length-grouped, random and fixed-32 batches."""
    rows = []
    steps_per_epoch = -(-len(setup.train) // 128)
    choices = {
        "group_by_length": ("grouped", None),
        "random, padded to batch longest (hfnlp default)": ("random", None),
        "random, padded to 32": ("random", 32),
    }
    batches = {label: setup.batches(sampling, steps, pad_to=pad_to) for label, (sampling, pad_to) in choices.items()}
    for name in ("textcnn", "bilstm"):
        timed = compare({label: training_step(setup.model(name), batches[label]) for label in choices}, steps)
        for label, ms in timed.items():
            width = sum(batch["input_ids"].shape[1] for batch in batches[label]) / steps
            rows.append(
                ("batching", name, label, ms, f"mean width {width:.1f}; epoch ≈ {ms * steps_per_epoch / 1000:.0f} s")
            )
    return rows


def micro_packing(setup: MicroSetup, steps: int) -> list[tuple]:
    """BiLSTM forward + backward as hfnlp runs it (packed only when a batch mixes lengths) against the same LSTM run
    over the padded batch."""
    model = setup.model("bilstm")
    rows = []
    for sampling in ("grouped", "random"):
        batches = setup.batches(sampling, steps)

        def packed(index: int, batches: list[dict] = batches) -> None:
            model(**batches[index]).loss.backward()

        def padded(index: int, batches: list[dict] = batches) -> None:
            _, (hidden, _) = model.rnn(model.embedding(batches[index]["input_ids"]))
            hidden[-2:].sum().backward()

        timed = compare({"hfnlp forward (packs mixed-length batches only)": packed, "padded": padded}, steps)
        rows += [("packing", "bilstm", f"{variant}, {sampling} batches", ms) for variant, ms in timed.items()]
    return rows


def micro_compile(setup: MicroSetup, steps: int) -> list[tuple]:
    """``torch.compile`` (inductor) against eager for TextCNN, on batches padded to their longest text (a new width
    can recompile) and on fixed-32 batches (one shape); every compiled variant first runs all its batches once,
    timed as compiling."""
    import torch

    rows = []
    for label, batches in (
        ("batch longest", setup.batches("random", steps)),
        ("fixed 32", setup.batches("random", steps, pad_to=32)),
    ):
        compiled = training_step(torch.compile(setup.model("textcnn")), batches)
        started = time.perf_counter()
        for index in range(steps):
            compiled(index)
        compile_seconds = time.perf_counter() - started
        timed = compare({"eager": training_step(setup.model("textcnn"), batches), "torch.compile": compiled}, steps)
        rows.append(("compile", "textcnn", f"eager, {label}", timed["eager"]))
        note = f"first pass over the batches (compiling) {compile_seconds:.0f} s"
        rows.append(("compile", "textcnn", f"torch.compile, {label}", timed["torch.compile"], note))
    return rows


def micro_data(setup: MicroSetup, steps: int) -> list[tuple]:
    """The data path alone: a Trainer-style DataLoader (random order + ``DataCollatorWithPadding``) with
    0 or 2 workers, pin_memory on or off, against indexing a pre-padded tensor as the naive loop does."""
    import torch
    from torch.utils.data import DataLoader

    dataset = setup.train.remove_columns("length")
    order = setup.order("random")
    iterators = {
        f"DataLoader + collator, workers={workers}, pin_memory={pin}": iter(
            DataLoader(
                dataset, batch_size=128, sampler=order, collate_fn=setup.collator, num_workers=workers, pin_memory=pin
            )
        )
        for workers, pin in ((0, False), (0, True), (2, False))
    }
    for iterator in iterators.values():  # start the workers before timing
        next(iterator)
    ids = torch.zeros(len(dataset), 32, dtype=torch.long)
    variants: dict[str, Callable[[int], None]] = {name: lambda _, it=it: next(it) for name, it in iterators.items()}
    variants["indexing a pre-padded tensor (naive)"] = lambda i: ids[order[i * 128 : (i + 1) * 128]].clone()
    return [("data", "all", name, ms) for name, ms in compare(variants, steps).items()]


def micro_versus_naive(setup: MicroSetup, steps: int) -> list[tuple]:
    """hfnlp's and the tutorial's models step by step, interleaved so that load changes hit both alike: the tutorial
    model on fixed-32 batches (its loop), hfnlp's model on the same rows padded to 32 (model code alone), padded to
    the batch's longest text (hfnlp's default) and length-grouped (``training.group_by_length: true``). Epoch
    estimates exclude the data path and Trainer's bookkeeping."""
    import naive_reference as naive
    import torch

    fixed, longest = setup.batches("random", steps, pad_to=32), setup.batches("random", steps)
    grouped = setup.batches("grouped", steps)
    steps_per_epoch = -(-len(setup.train) // 128)
    buckets = setup.recipes["fasttext"].model["ngram_buckets"]
    for batch in fixed:  # the tutorial's fastText reads n-gram ids hashed in Python beforehand
        batch["ngrams"] = [torch.LongTensor(part) for part in naive.hash_ngrams(batch["input_ids"].tolist(), buckets)]
    rows = []
    for name in TEXT_MODELS:
        tutorial = _tutorial_model(setup, name)
        variants = {
            "tutorial model, fixed 32": _tutorial_step(tutorial, fixed, with_ngrams=name == "fasttext"),
            "hfnlp model, fixed 32": training_step(setup.model(name), fixed),
            "hfnlp model, batch longest (default)": training_step(setup.model(name), longest),
            "hfnlp model, group_by_length": training_step(setup.model(name), grouped),
        }
        timed = compare(variants, steps)
        for variant, ms in timed.items():
            ratio = timed["tutorial model, fixed 32"] / ms
            note = f"epoch ≈ {ms * steps_per_epoch / 1000:.0f} s; {ratio:.2f}× the tutorial's speed"
            rows.append(("versus_naive", name, variant, ms, note))
    return rows


def _tutorial_step(model: Any, batches: list[dict], with_ngrams: bool) -> Callable[[int], None]:
    """Like :func:`training_step`, for a tutorial model (positional inputs, logits out)."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(index: int) -> None:
        batch = batches[index]
        inputs = [batch["input_ids"], *batch["ngrams"]] if with_ngrams else [batch["input_ids"]]
        loss = torch.nn.functional.cross_entropy(model(*inputs), batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def _tutorial_model(setup: MicroSetup, name: str) -> Any:
    """The tutorial's model of recipe ``name`` (``naive_reference``), sized like hfnlp's."""
    import naive_reference as naive
    import torch

    params, vocab, labels = setup.recipes[name].model, len(setup.tokenizer), len(setup.label_names)
    torch.manual_seed(0)
    if name == "textcnn":
        model = naive.TextCNN(
            vocab, labels, params["embedding_dim"], params["filter_sizes"], params["num_filters"], params["dropout"]
        )
    elif name == "bilstm":
        model = naive.TextRNN(
            vocab,
            labels,
            params["embedding_dim"],
            params["hidden_size"],
            params["num_layers"],
            params["bidirectional"],
            params["dropout"],
        )
    else:
        model = naive.FastText(
            vocab, labels, params["embedding_dim"], params["ngram_buckets"], params["hidden_size"], params["dropout"]
        )
    naive.init_network(model)
    return model


def run_micro(names: list[str], threads: int, steps: int, data_root: Path) -> str:
    """Run the named micro-benchmarks with ``threads`` intra-op threads; a markdown table of the results."""
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # before tokenizers starts its thread pool
    import torch

    torch.set_num_threads(threads)
    setup = MicroSetup.load(data_root)
    lines = [
        "| benchmark | model | variant | ms per step, median (tokenization: per 1,000 rows) | note |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        torch.set_num_threads(threads)
        for row in globals()[f"micro_{name}"](setup, steps):
            bench, model, variant, milliseconds, *note = row
            lines.append(f"| {bench} | {model} | {variant} | {milliseconds:.1f} | {note[0] if note else ''} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


# ---------------------------------------------------------------- workers (one subprocess per run)


def peak_rss_mib() -> float:
    """Peak resident memory of this process, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def set_threads(threads: int) -> None:
    """Fix torch's intra-op threads (OpenMP/MKL come from the environment) and a single inter-op thread."""
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


class StageTimer:
    """Times calls of functions that an hfnlp task module looks up by name, without changing hfnlp's code: each
    wrapped function records its total duration, its last arguments and its last result."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.arguments: dict[str, tuple] = {}
        self.results: dict[str, Any] = {}

    def wrap(self, owner: Any, name: str) -> None:
        """Replace ``owner.name`` (a module function or a class method) by a timed version."""
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = original(*args, **kwargs)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.arguments[name], self.results[name] = args, result
            return result

        setattr(owner, name, timed)


def _hfnlp_recipe(job: Job, **sections: dict[str, Any]) -> Any:
    """The job's recipe for an in-process hfnlp run: its own output folder, ``job.epochs`` epochs without early
    stopping (the naive loop runs every epoch too), no TensorBoard or progress bars; ``sections`` update the rest."""
    from hfnlp.tasks import recipe_from_dict

    raw = dict(job.recipe)
    raw["output_dir"] = str(Path(job.data_dir) / "run")
    raw["training"] = {
        **raw["training"],
        "num_train_epochs": job.epochs,
        "early_stopping_patience": None,
        "report_to": [],
        "disable_tqdm": True,
    }
    for section, values in sections.items():
        raw[section] = {**raw[section], **values}
    return recipe_from_dict(raw)


def hfnlp_text_worker(job: Job) -> dict[str, Any]:
    """hfnlp's path: the whole ``hfnlp train`` run in-process, with its tokenizer training and encoding timed and a
    callback timing each training epoch (evaluation excluded) and each evaluation."""
    from hfnlp.tasks import get_task, text_classification
    from hfnlp.training.arguments import resolve_precision
    from hfnlp.training.run import RunOptions

    recipe = _hfnlp_recipe(job)
    timer = StageTimer()
    timer.wrap(text_classification, "train_tokenizer")
    timer.wrap(text_classification, "encode_splits_measured")  # what the task calls: the splits, and lengths
    clock = _trainer_clock()
    summary = get_task(recipe.task).run(recipe, RunOptions(callbacks=[clock]))
    encoded, _ = timer.results["encode_splits_measured"]
    return {
        "tokenize_rows": sum(len(split) for split in encoded.values()),
        "tokenize_seconds": timer.seconds["train_tokenizer"] + timer.seconds["encode_splits_measured"],
        "tokenizer_training_seconds": timer.seconds["train_tokenizer"],
        "train_rows": len(encoded["train"]),
        "epoch_seconds": clock.epoch_seconds,
        "eval_rows": len(encoded["validation"]),
        "eval_seconds": clock.eval_seconds,
        "metric": "test accuracy",
        "score": summary["test"]["accuracy"],
        "validation_per_epoch": clock.eval_accuracies,
        "best_validation": summary["best_validation_metric"],
        "vocab_size": len(timer.results["train_tokenizer"]),
        "precision": "bf16" if resolve_precision(recipe.training.mixed_precision)[0] else "fp32",
        "batching": "length buckets" if recipe.training.group_by_length else "random",
    }


def _trainer_clock() -> Any:
    """A ``TrainerCallback`` recording each training epoch's duration (evaluation runs after ``on_epoch_end``)
    and each evaluation's runtime."""
    from transformers import TrainerCallback

    class TrainerClock(TrainerCallback):
        def __init__(self) -> None:
            self.epoch_seconds: list[float] = []
            self.eval_seconds: list[float] = []
            self.eval_accuracies: list[float] = []
            self._started = 0.0

        def on_epoch_begin(self, args, state, control, **kwargs) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs) -> None:
            self.epoch_seconds.append(time.perf_counter() - self._started)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
            self.eval_seconds.append(metrics["eval_runtime"])
            if "eval_accuracy" in metrics:
                self.eval_accuracies.append(metrics["eval_accuracy"])

    return TrainerClock()


def naive_text_worker(job: Job) -> dict[str, Any]:
    """The tutorials' path on the same files: Python reading and tokenization, fixed padding, plain loop."""
    import naive_reference as naive
    import torch

    recipe = job.recipe
    data, model_params, training = recipe["data"], recipe["model"], recipe["training"]
    splits = {}
    for split, key in (("train", "train_file"), ("validation", "validation_file"), ("test", "test_file")):
        texts, labels = [], []
        with open(data[key], encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line:
                    text, label = line.split("\t")
                    texts.append(text)
                    labels.append(int(label))
        splits[split] = (texts, labels)
    num_labels = len(Path(data["label_file"]).read_text(encoding="utf-8").split())
    buckets = model_params["ngram_buckets"] if job.model == "fasttext" else None
    prepared = naive.prepare_data(
        splits,
        pad_size=recipe["tokenizer"]["max_length"],
        max_vocab=recipe["tokenizer"]["vocab_size"],
        ngram_buckets=buckets,
    )
    torch.manual_seed(recipe["seed"])
    vocab_size, embed, dropout = len(prepared.vocab), model_params["embedding_dim"], model_params["dropout"]
    if job.model == "textcnn":
        model = naive.TextCNN(
            vocab_size, num_labels, embed, model_params["filter_sizes"], model_params["num_filters"], dropout
        )
    elif job.model == "bilstm":
        model = naive.TextRNN(
            vocab_size,
            num_labels,
            embed,
            model_params["hidden_size"],
            model_params["num_layers"],
            model_params["bidirectional"],
            dropout,
        )
    else:
        model = naive.FastText(vocab_size, num_labels, embed, buckets, model_params["hidden_size"], dropout)
    naive.init_network(model)
    vectors_seconds = 0.0
    if recipe["tokenizer"]["pretrained_vectors"]:  # the tutorial's ``embedding = 'embedding_SougouNews.npz'``
        started = time.perf_counter()
        vectors = naive.load_vectors(recipe["tokenizer"]["pretrained_vectors"], prepared.vocab, embed)
        model.embedding.weight.data.copy_(vectors)
        vectors_seconds = time.perf_counter() - started
    result = naive.train_and_evaluate(
        model,
        prepared.tensors,
        epochs=job.epochs,
        batch_size=training["per_device_train_batch_size"],
        eval_batch_size=training["per_device_eval_batch_size"],
        learning_rate=training["learning_rate"],
        max_grad_norm=training["max_grad_norm"],
        seed=recipe["seed"],
    )
    return {
        "tokenize_rows": sum(len(texts) for texts, _ in splits.values()),
        "tokenize_seconds": sum(prepared.seconds.values()),
        "tokenizer_training_seconds": prepared.seconds["vocab"],
        "train_rows": result.train_rows,
        "epoch_seconds": result.epoch_seconds,
        "eval_rows": result.eval_rows,
        "eval_seconds": result.eval_seconds,
        "metric": "test accuracy",
        "score": result.test_accuracy,
        "validation_per_epoch": result.validation_accuracies,
        "best_validation": result.best_validation_accuracy,
        "precision": "fp32",
        "batching": f"random, padded to {recipe['tokenizer']['max_length']}",
        "vocab_size": vocab_size,
        "vectors_seconds": vectors_seconds,
    }


FEATURE_INDEX = "flickr8k-index.json"


def hfnlp_caption_worker(job: Job) -> dict[str, Any]:
    """hfnlp's captioning run in-process on cached encoder features, decoding greedily (as the naive loop does);
    writes which feature file and image order it used, for the naive run."""
    from hfnlp.tasks import get_task, image_captioning
    from hfnlp.training.run import RunOptions

    recipe = _hfnlp_recipe(job, data=_limited_image_lists(job), model={"beam_size": 1})
    run_dir = Path(recipe.output_dir)
    run_dir.mkdir(parents=True)
    cache = Path(job.feature_cache) / (f"limit-{job.limit}" if job.limit else "full")
    cache.mkdir(parents=True, exist_ok=True)
    (run_dir / "features").symlink_to(cache, target_is_directory=True)  # feature maps survive between runs
    timer = StageTimer()
    timer.wrap(image_captioning, "train_caption_tokenizer")
    timer.wrap(image_captioning, "encode_captions")
    timer.wrap(image_captioning.CaptionImages, "cache_features")
    clock = _trainer_clock()
    summary = get_task(recipe.task).run(recipe, RunOptions(callbacks=[clock]))

    images = timer.arguments["cache_features"][0]
    feature_file = Path(images.features.filename)
    names = [Path(row["image"]["path"]).name for row in images.table]
    (cache / FEATURE_INDEX).write_text(json.dumps({"file": feature_file.name, "images": names}))
    encoded = timer.results["encode_captions"]
    return {
        "tokenize_rows": sum(len(split) for split in encoded.values()),
        "tokenize_seconds": timer.seconds["train_caption_tokenizer"] + timer.seconds["encode_captions"],
        "tokenizer_training_seconds": timer.seconds["train_caption_tokenizer"],
        "feature_cache_seconds": timer.seconds["cache_features"],
        "train_rows": len(encoded["train"]),
        "epoch_seconds": clock.epoch_seconds,
        "eval_rows": len(images) - images.offsets["validation"],
        "eval_seconds": clock.eval_seconds,
        "metric": "validation BLEU-4 (greedy)",
        "score": summary["validation"]["bleu_4"],
        "vocab_size": len(timer.results["train_caption_tokenizer"]),
    }


def _limited_image_lists(job: Job) -> dict[str, str]:
    """With ``--limit``: split lists naming the first ``limit`` images of the train and validation lists."""
    if not job.limit:
        return {}
    folder = Path(job.data_dir) / "lists"
    folder.mkdir()
    token_dir = Path(job.recipe["data"]["captions_file"]).parent
    lists = {}
    for split, name in (("train_list", "Flickr_8k.trainImages.txt"), ("validation_list", "Flickr_8k.devImages.txt")):
        names = (token_dir / name).read_text().split()[: job.limit]
        (folder / name).write_text("\n".join(names) + "\n")
        lists[split] = str(folder / name)
    return lists


def naive_caption_worker(job: Job) -> dict[str, Any]:
    """The tutorial's captioning loop on the same cached feature maps (written by the hfnlp run of this benchmark):
    Python word map and fixed-length captions, a plain shuffled ``DataLoader``, greedy decoding, BLEU-4 with the
    same scorer as hfnlp (``hfnlp.metrics.coco``, pure Python)."""
    import naive_reference as naive
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from hfnlp.metrics.coco import corpus_bleu, prepare_captions

    recipe, data = job.recipe, job.recipe["data"]
    cache = Path(job.feature_cache) / (f"limit-{job.limit}" if job.limit else "full")
    index = json.loads((cache / FEATURE_INDEX).read_text())
    features = np.load(cache / index["file"], mmap_mode="r")
    row_of = {name: row for row, name in enumerate(index["images"])}
    captions: dict[str, list[str]] = {}
    with open(data["captions_file"], encoding="utf-8") as handle:
        for line in handle:
            key, _, caption = line.strip().partition("\t")
            captions.setdefault(key.rsplit("#", 1)[0], []).append(caption)
    token_dir = Path(data["captions_file"]).parent
    images = {
        split: [name for name in (token_dir / file).read_text().split() if name in captions][: job.limit or None]
        for split, file in (("train", "Flickr_8k.trainImages.txt"), ("validation", "Flickr_8k.devImages.txt"))
    }

    max_length, training, model = recipe["tokenizer"]["max_length"], recipe["training"], recipe["model"]
    started = time.perf_counter()
    word_map = naive.build_word_map(
        [c for name in images["train"] for c in captions[name]], recipe["tokenizer"]["min_frequency"]
    )
    vocab_seconds = time.perf_counter() - started
    encoded = {}
    for split, names in images.items():
        texts = [caption for name in names for caption in captions[name]]
        rows = [row_of[name] for name in names for _ in captions[name]]
        encoded[split] = naive.CaptionDataset(features, rows, *naive.encode_captions(texts, word_map, max_length))
    tokenize_seconds = time.perf_counter() - started

    torch.manual_seed(recipe["seed"])
    decoder = naive.AttentionDecoder(
        features.shape[-1],
        len(word_map),
        model["embedding_dim"],
        model["hidden_size"],
        model["attention_dim"],
        model["dropout"],
    )
    train_loader = DataLoader(encoded["train"], batch_size=training["per_device_train_batch_size"], shuffle=True)
    eval_batch = training["per_device_eval_batch_size"]
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=training["learning_rate"], weight_decay=0.0)
    total_steps = job.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    words = list(word_map)
    references = [captions[name] for name in images["validation"]]
    validation_features = [row_of[name] for name in images["validation"]]
    epoch_seconds, eval_seconds, scores = [], [], []
    for _ in range(job.epochs):
        decoder.train()
        started = time.perf_counter()
        for batch_features, batch_captions, lengths in train_loader:
            loss = naive.caption_loss(
                decoder, batch_features, batch_captions, lengths, model["doubly_stochastic_coefficient"]
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), training["max_grad_norm"])
            optimizer.step()
            scheduler.step()
        epoch_seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        decoder.eval()
        with torch.no_grad():
            for batch_features, batch_captions, lengths in DataLoader(encoded["validation"], batch_size=eval_batch):
                naive.caption_loss(
                    decoder, batch_features, batch_captions, lengths, model["doubly_stochastic_coefficient"]
                )
            predictions = []
            for start in range(0, len(validation_features), eval_batch):
                rows = validation_features[start : start + eval_batch]
                batch_features = torch.from_numpy(features[rows].astype("float32"))
                generated = decoder.greedy(batch_features, word_map["<start>"], max_length - 1)
                predictions += [naive.decode_words(ids, words, word_map["<end>"]) for ids in generated.tolist()]
        scores.append(corpus_bleu(*prepare_captions(predictions, references, True))[3])
        eval_seconds.append(time.perf_counter() - started)
    return {
        "tokenize_rows": sum(len(split) for split in encoded.values()),
        "tokenize_seconds": tokenize_seconds,
        "tokenizer_training_seconds": vocab_seconds,
        "train_rows": len(encoded["train"]),
        "epoch_seconds": epoch_seconds,
        "eval_rows": len(validation_features),
        "eval_seconds": eval_seconds,
        "metric": "validation BLEU-4 (greedy)",
        "score": max(scores),
        "vocab_size": len(word_map),
    }


WORKERS = {
    ("hfnlp", "text"): hfnlp_text_worker,
    ("naive", "text"): naive_text_worker,
    ("hfnlp", "caption"): hfnlp_caption_worker,
    ("naive", "caption"): naive_caption_worker,
}


def worker_main(job_file: str, result_file: str) -> None:
    """Run one job (in its own process) and write its result as JSON."""
    import torch

    job = Job(**json.loads(Path(job_file).read_text()))
    set_threads(job.threads)
    started = time.perf_counter()
    kind = "text" if job.model in TEXT_MODELS else "caption"
    result = WORKERS[(job.implementation, kind)](job)
    result.update(
        peak_rss_mib=round(peak_rss_mib(), 1),
        wall_seconds=round(time.perf_counter() - started, 1),
        torch_threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
    )
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3])
    else:
        main()
