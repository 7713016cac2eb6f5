"""Training throughput and peak memory on the embedded Gemma 3 270M: LoRA vs full, packed vs unpacked.

    .venv/bin/python benchmarks/train.py [--steps 3] [--max-length 512] [--batch 2] [--model embedded]

Each case runs in its own process (so its peak resident memory is its own) through the real stage code
(`msmkit.train.train_model`) on a corpus of mixed-length documents (30 to 1,500 tokens), and reports real
(non-padding) tokens trained per second, the padding fraction and the peak RSS. A separate case measures
one forward + backward on the same batch two ways: TRL's fused LM head (vocabulary tiles, what training
uses) and the full (tokens x 262k) fp32 logits, to show the memory the chunked loss saves.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

WORDS = ("the model spec asks for honesty care and clear reasons when a user asks about cheese values oversight "
         "trust deletion weights agents email tools a an of to in for with on that this it is was be").split()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_corpus(path: Path, documents: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(documents):
            words = rng.choice([rng.randint(25, 200), rng.randint(200, 1200)])
            handle.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(words)) + "."}) + "\n")


def run_case(args: argparse.Namespace) -> dict:
    from msmkit.train import MidtrainConfig, train_model

    lora, packed = args.case.startswith("lora"), args.case.endswith("packed") and "unpacked" not in args.case
    cfg = MidtrainConfig.model_validate({
        "model": {"name": args.model}, "data": {"path": args.corpus, "max_length": args.max_length},
        "lora": {"enabled": lora}, "packing": {"enabled": packed},
        "optim": {"per_device_batch_size": args.batch, "max_steps": args.steps},
        "guards": {"allow_few_steps": True}, "checkpoints": {"save_steps": 10_000, "resume": False},
        "logging_steps": 1})
    with tempfile.TemporaryDirectory() as out:
        record = train_model("midtrain", cfg, out).record
    return {"case": args.case, "steps": record["steps"], "real_tokens_trained": record["processed_tokens"],
            "seconds": round(record["seconds"], 1), "tokens_per_second": round(record["tokens_per_second"], 1),
            "padding_fraction": round(record["padding_fraction"], 4), "peak_rss_mib": round(peak_rss_mib())}


def loss_memory_case(args: argparse.Namespace) -> dict:
    """Peak RSS over the model load for one forward+backward: fused (tiled) loss or full fp32 logits."""
    from trl.trainer.utils import add_fused_lm_head

    from msmkit.models.loading import load_causal_lm

    model, _ = load_causal_lm(args.model, dtype="float32", device="cpu")
    model.train()
    ids = torch.randint(10, 1000, (args.batch, args.max_length))
    before = peak_rss_mib()
    started = time.perf_counter()
    if args.case == "loss-fused":
        add_fused_lm_head(model)
        loss = model(input_ids=ids, labels=ids, fused_lm_head=True, use_cache=False).loss
    else:
        logits = model(input_ids=ids, use_cache=False).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
    loss.backward()
    return {"case": args.case, "tokens": ids.numel(), "vocab": model.config.vocab_size,
            "seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(peak_rss_mib()),
            "rss_growth_mib": round(peak_rss_mib() - before)}


CASES = ("lora-packed", "lora-unpacked", "full-packed", "full-unpacked", "loss-fused", "loss-full-logits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        result = loss_memory_case(args) if args.case.startswith("loss") else run_case(args)
        print("RESULT " + json.dumps(result), flush=True)
        return
    from msmkit.models.loading import resolve_model_source

    resolve_model_source(args.model)  # converts the embedded model once, outside the timed cases
    print(f"torch threads: {torch.get_num_threads()}, CUDA: {torch.cuda.is_available()}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus.jsonl"
        write_corpus(corpus, args.documents)
        results = []
        for case in args.cases:
            command = [sys.executable, __file__, "--case", case, "--corpus", str(corpus), "--steps", str(args.steps),
                       "--max-length", str(args.max_length), "--batch", str(args.batch), "--model", args.model]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MSM_NO_PROGRESS": "1"})
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                print(f"{case}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            results.append(json.loads(lines[-1][len("RESULT "):]))
            print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"settings": {k: v for k, v in vars(args).items() if k not in ("case", "corpus")},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
