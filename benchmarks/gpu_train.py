"""GPU training throughput: Llama-3.1-8B LoRA r64 and Llama-3.2-1B full fine-tuning, random weights, no network.

    python benchmarks/gpu_train.py [--wheels DIR] [--cases lora-8b full-1b] [--steps 10] [--warmup 3]
        [--micro-batch N] [--peak-tflops X]
    python benchmarks/gpu_train.py --smoke     # tiny shapes on CPU: checks that the script runs (a test does this)

One run takes a few minutes on one H100/H200-class GPU (well under 10): each case runs in its own process,
builds the model from its architecture config with random weights on the GPU (transformers LlamaConfig with
the published shapes; nothing is downloaded), and trains it through msmkit's own training code: a
MidtrainConfig with the paper's recipe (LoRA r=64, alpha 128, dropout 0 on q/k/v/o/gate/up/down; AdamW lr
1e-4, cosine, 5% warmup, weight decay 0.01), bf16, 4,096-token sequences packed best-fit-decreasing with
documents kept apart (msmkit.train.packing), TRL's SFTTrainer with its fused LM head, as
msmkit.train.trainer builds it. The corpus is synthetic: random token ids in documents of lognormal
length (median ~700 tokens), the shape of a generated MSM corpus.

Settings chosen for speed (goal: >= 10,000 tokens/s for 8B LoRA on one H100-class GPU):
- FlashAttention-2 varlen kernels on one flattened, padding-free row per batch when `flash_attn` is
  installed, else PyTorch SDPA with the block-diagonal mask msmkit builds from per-document positions;
- packing without padding (padding fraction is reported), the fused (tiled) LM-head loss, no full logits;
- no gradient checkpointing; the micro-batch is sized from GPU memory (about 26 GB per 4,096-token
  sequence for 8B without checkpointing, 7 GB for 1B) and halved on out-of-memory, with checkpointing
  only as the last resort (the result says which);
- the fused AdamW kernel (the same AdamW); Liger kernels (RMSNorm, SwiGLU, RoPE) when `liger_kernel`
  is installed (TRL keeps its own fused loss).

Reported per case: real (non-padding) tokens per second over the timed steps (after --warmup steps), MFU,
peak GPU memory (allocated and reserved), the micro-batch, attention kernel, versions and device. MFU counts
the FLOPs the step really needs, against the dense bf16 peak of the device (989.4 TFLOP/s for H100 SXM
and H200, both named in the output; --peak-tflops for anything else): forward 2 FLOPs per weight per token
plus causal attention within each document; backward twice the forward for trained weights and for
attention, and once the forward for frozen weights (LoRA needs their input gradients, not their weight
gradients). The 6N convention (6 x parameters x tokens, as often quoted for full fine-tuning) is given too.

Figures: not yet measured (no GPU was available when this was written); record them here when run.

Needs: a CUDA build of torch, transformers, peft, accelerate, trl, datasets, pydantic, pyyaml (what
msmkit.train imports); optional flash_attn and liger_kernel. A GPU machine without network gets the
missing ones from wheels carried with the repo: on a machine with network, for the GPU machine's Python,

    pip download --dest wheels --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \\
        trl datasets pydantic pyyaml liger-kernel

(add `--no-deps` and list exact dependencies to stay small: pure-Python wheels are a few MB; pyarrow, which
datasets needs, is about 40 MB), then `--wheels wheels` installs what is missing with
`pip install --no-index --find-links wheels`. Without a GPU the script stops with a message unless --smoke.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {"torch": "torch", "transformers": "transformers", "peft": "peft", "accelerate": "accelerate",
            "trl": "trl", "datasets": "datasets", "pydantic": "pydantic", "yaml": "pyyaml"}
# Dense bf16 peak TFLOP/s (no sparsity) by device-name substring, most specific first.
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("GH200", 989.4), ("H200", 989.4), ("H100", 989.4),
               ("H800", 989.4), ("A100", 312.0))
GB = 1024**3


@dataclass(frozen=True)
class Shape:
    """Llama architecture shapes (Llama-3.1-8B and Llama-3.2-1B as published; `tiny` for --smoke)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    gb_static: float  # weights, gradients, optimizer state, workspace
    gb_per_sequence: float  # activations of one 4,096-token sequence without gradient checkpointing


SHAPES = {
    "8b": Shape(4096, 32, 32, 8, 14336, 128256, False, 22.0, 26.0),
    "1b": Shape(2048, 16, 32, 8, 8192, 128256, True, 14.0, 7.0),
    "tiny": Shape(64, 2, 4, 2, 128, 512, False, 0.0, 0.0),
}
CASES = {"lora-8b": ("8b", True), "full-1b": ("1b", False)}


# -- packages -------------------------------------------------------------------------------------

def ensure_packages(wheels: str | None) -> None:
    missing = [package for module, package in REQUIRED.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return
    if wheels is None:
        raise SystemExit(f"missing packages: {', '.join(missing)}. Carry wheels for them and pass --wheels DIR "
                         "(see this script's docstring for the pip download command)")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--find-links", wheels, *missing],
                   check=True)


# -- model, data, FLOPs ---------------------------------------------------------------------------

def llama_config(shape: Shape, max_length: int) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=shape.hidden, num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                       num_key_value_heads=shape.kv_heads, intermediate_size=shape.intermediate,
                       vocab_size=shape.vocab, tie_word_embeddings=shape.tied, max_position_embeddings=131072,
                       rope_theta=500000.0, rms_norm_eps=1e-5, bos_token_id=2, eos_token_id=1, pad_token_id=0,
                       use_cache=False)


def build_model(config: Any, device: str, dtype: Any) -> Any:
    """Random weights, made directly on `device` in `dtype` (an 8B model is initialised in seconds on a GPU)."""
    import torch
    from transformers import LlamaForCausalLM

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model


def word_tokenizer() -> Any:
    """A minimal fast tokenizer with pad 0, eos 1, bos 2 (the data are token ids already; TRL wants one)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(WordLevel({"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                                   bos_token="<bos>", unk_token="<unk>")


def synthetic_rows(tokens: int, vocab: int, max_length: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Documents of random token ids, lognormal lengths (median ~700 at 4,096; scaled for short sequences),
    each ending in EOS, every token a label: at least `tokens` tokens in all."""
    rng = random.Random(seed)
    median = max(8, int(700 * max_length / 4096))
    rows, total = [], 0
    while total < tokens:
        length = min(max(8, int(rng.lognormvariate(math.log(median), 0.9))), 2 * max_length)
        ids = [rng.randrange(4, vocab) for _ in range(length - 1)] + [1]
        rows.append({"input_ids": ids, "labels": list(ids)})
        total += length
    return rows


def step_flops(shape: Shape, documents: list[list[int]], lora: bool, rank: int) -> tuple[float, float]:
    """(FLOPs the steps need, 6N-convention FLOPs) for the given per-sequence document lengths."""
    head_dim = shape.hidden // shape.heads
    q, kv = shape.heads * head_dim, shape.kv_heads * head_dim
    per_layer = shape.hidden * (q + 2 * kv) + q * shape.hidden + 3 * shape.hidden * shape.intermediate
    matmul = shape.layers * per_layer + shape.hidden * shape.vocab  # LM head included, embedding lookup not
    adapter = shape.layers * rank * ((shape.hidden + q) + 2 * (shape.hidden + kv) + (q + shape.hidden)
                                     + 2 * (shape.hidden + shape.intermediate) + (shape.intermediate + shape.hidden))
    tokens = sum(sum(lengths) for lengths in documents)
    causal_pairs = sum(n * (n + 1) / 2 for lengths in documents for n in lengths)
    attention_forward = 4 * shape.layers * q * causal_pairs  # QK^T and AV, 2 FLOPs per multiply-add
    forward = 2 * matmul * tokens
    if lora:
        needed = forward * 2 + 6 * adapter * tokens + 3 * attention_forward
        parameters = matmul + (0 if shape.tied else shape.hidden * shape.vocab) + adapter
    else:
        needed = forward * 3 + 3 * attention_forward
        parameters = matmul + (0 if shape.tied else shape.hidden * shape.vocab)
    return needed, 6.0 * parameters * tokens


def peak_tflops(device_name: str, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "given with --peak-tflops"
    for name, peak in PEAK_TFLOPS:
        if name in device_name:
            return peak, f"dense bf16 peak of {name}"
    return None, "unknown device: pass --peak-tflops"


# -- one case -------------------------------------------------------------------------------------

def attention_kernel() -> str:
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") is not None else "sdpa"


def run_case(case: str, args: argparse.Namespace, micro_batch: int, checkpointing: bool) -> dict[str, Any]:
    import torch
    from transformers import TrainerCallback

    sys.path.insert(0, str(ROOT))
    from msmkit.train import MidtrainConfig
    from msmkit.train.packing import DocumentBoundaryCollator, build_sequences
    from msmkit.train.trainer import _build_trainer  # the exact trainer msmkit's train_model builds

    shape_name, lora = CASES[case]
    shape = SHAPES["tiny" if args.smoke else shape_name]
    max_length = 128 if args.smoke else 4096
    on_gpu = torch.cuda.is_available() and not args.smoke
    device, dtype = ("cuda", torch.bfloat16) if on_gpu else ("cpu", torch.float32)
    attention = attention_kernel() if on_gpu else "sdpa"
    liger = on_gpu and importlib.util.find_spec("liger_kernel") is not None
    steps = args.warmup + args.steps
    cfg = MidtrainConfig.model_validate({
        "model": {"name": f"random-llama-{shape_name}", "attn_implementation": attention,
                  "gradient_checkpointing": checkpointing},
        "lora": {"enabled": lora}, "data": {"path": "synthetic", "max_length": max_length},
        "packing": {"enabled": True},
        "optim": {"per_device_batch_size": micro_batch, "max_steps": steps,
                  "optimizer": "adamw_torch_fused" if on_gpu else "adamw_torch"},
        "guards": {"allow_few_steps": True}, "checkpoints": {"save_steps": 10**9, "resume": False},
        "logging_steps": 1, "trl": {"save_strategy": "no", **({"use_liger_kernel": True} if liger else {})}})
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    model = build_model(llama_config(shape, max_length), device, dtype)
    model.set_attn_implementation(attention)
    tokenizer = word_tokenizer()
    rows = synthetic_rows(int(1.3 * steps * micro_batch * max_length), shape.vocab, max_length)
    dataset = build_sequences(rows, max_length, pack=True)

    class RecordingCollator(DocumentBoundaryCollator):
        """msmkit's collator, also keeping each batch's document lengths (for the attention FLOPs)."""

        def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
            documents.append([feature["seq_lengths"] for feature in features])
            return super().__call__(features)

    documents: list[list[list[int]]] = []
    collator = RecordingCollator(tokenizer.pad_token_id, flatten=attention.startswith("flash"))

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, *_: Any, **__: Any) -> None:
            if on_gpu:
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        trainer = _build_trainer(model, tokenizer, dataset, collator, cfg, Path(out), "fresh-lora" if lora else "full",
                                 steps, [clock])
        trainer.train()
    if len(clock.ends) < steps:
        raise RuntimeError(f"{case}: trained {len(clock.ends)} of {steps} steps (too little data?)")
    seconds = clock.ends[steps - 1] - clock.ends[args.warmup - 1]
    timed = collator.batches[args.warmup:steps]  # one collated batch per step (no gradient accumulation)
    real = sum(batch[0] for batch in timed)
    slots = sum(batch[1] for batch in timed)
    timed_sequences = [lengths for batch in documents[args.warmup:steps] for lengths in batch]
    needed, six_n = step_flops(shape, timed_sequences, lora, cfg.lora.r)
    result: dict[str, Any] = {
        "case": case, "shape": shape_name if not args.smoke else "tiny", "lora": lora, "micro_batch": micro_batch,
        "gradient_checkpointing": checkpointing, "attention": attention, "liger_kernel": liger,
        "max_length": max_length, "timed_steps": args.steps, "seconds": round(seconds, 3),
        "tokens": real, "padding_fraction": round(1 - real / slots, 4) if slots else 0.0,
        "tokens_per_second": round(real / seconds, 1), "final_loss": next(
            (entry["loss"] for entry in reversed(trainer.state.log_history) if "loss" in entry), None),
        "achieved_tflops": round(needed / seconds / 1e12, 2), "six_n_tflops": round(six_n / seconds / 1e12, 2),
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "versions": {name: _version(name) for name in ("torch", "transformers", "peft", "trl", "accelerate",
                                                       "flash_attn", "liger_kernel")},
    }
    if on_gpu:
        peak, source = peak_tflops(result["device"], args.peak_tflops)
        result.update(peak_tflops=peak, peak_source=source,
                      mfu=round(needed / seconds / 1e12 / peak, 4) if peak else None,
                      mfu_6n=round(six_n / seconds / 1e12 / peak, 4) if peak else None,
                      peak_allocated_gb=round(torch.cuda.max_memory_allocated() / GB, 2),
                      peak_reserved_gb=round(torch.cuda.max_memory_reserved() / GB, 2),
                      gpu_memory_gb=round(torch.cuda.get_device_properties(0).total_memory / GB, 1))
    else:
        result.update(peak_tflops=None, mfu=None, mfu_6n=None, peak_allocated_gb=None)
    del trainer, model
    gc.collect()
    return result


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name.replace("_", "-"))
    except PackageNotFoundError:
        return None


def planned_micro_batch(case: str, override: int | None) -> int:
    import torch

    if override:
        return override
    shape = SHAPES[CASES[case][0]]
    total = torch.cuda.get_device_properties(0).total_memory / GB
    return max(1, int((total - shape.gb_static) // shape.gb_per_sequence))


def run_in_child(case: str, args: argparse.Namespace, micro_batch: int, checkpointing: bool) -> dict[str, Any]:
    """One attempt in its own process (its own peak memory; an out-of-memory leaves the next attempt clean)."""
    command = [sys.executable, __file__, "--child", case, "--micro-batch", str(micro_batch), "--steps",
               str(args.steps), "--warmup", str(args.warmup)]
    if checkpointing:
        command.append("--checkpointing")
    if args.peak_tflops:
        command += ["--peak-tflops", str(args.peak_tflops)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1][len("RESULT "):])
    out_of_memory = "OutOfMemoryError" in done.stderr or "CUDA out of memory" in done.stderr
    return {"case": case, "micro_batch": micro_batch, "gradient_checkpointing": checkpointing,
            "error": "out of memory" if out_of_memory else done.stderr[-3000:]}


def measure(case: str, args: argparse.Namespace) -> dict[str, Any]:
    """Largest micro-batch that fits without checkpointing (halving on out-of-memory), else 1 with it."""
    micro_batch = planned_micro_batch(case, args.micro_batch)
    attempts = []
    while True:
        result = run_in_child(case, args, micro_batch, checkpointing=False)
        if result.get("error") != "out of memory" or micro_batch == 1:
            break
        attempts.append(result)
        micro_batch //= 2
    if result.get("error") == "out of memory":
        attempts.append(result)
        result = run_in_child(case, args, 1, checkpointing=True)
    result["out_of_memory_attempts"] = [attempt["micro_batch"] for attempt in attempts]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (kernels, allocator, compile)")
    parser.add_argument("--micro-batch", type=int, help="sequences per step (default: sized from GPU memory)")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, if not an H100/H200/A100")
    parser.add_argument("--wheels", help="folder of wheels to install missing packages from (no network)")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, to check the script runs")
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup = min(args.steps, 2), min(args.warmup, 1)
    os.environ.setdefault("MSM_NO_PROGRESS", "1")
    if args.child:
        print("RESULT " + json.dumps(run_case(args.child, args, args.micro_batch, args.checkpointing)), flush=True)
        return
    ensure_packages(args.wheels)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu_train.py measures GPU training and found no CUDA device (torch "
                         f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). Run it on a GPU machine, "
                         "or pass --smoke to check on CPU that it runs")
    results = []
    for case in args.cases:
        result = run_case(case, args, 2, False) if args.smoke else measure(case, args)
        results.append(result)
        print("RESULT " + json.dumps(result), flush=True)
    for result in results:
        if "error" in result:
            print(f"{result['case']}: FAILED ({result['error'][:200]})")
            continue
        mfu = f"MFU {result['mfu']:.1%} ({result['peak_source']}, 6N convention {result['mfu_6n']:.1%})" \
            if result.get("mfu") is not None else "MFU n/a"
        memory = f"peak {result['peak_allocated_gb']} GB allocated" if result.get("peak_allocated_gb") else ""
        print(f"{result['case']}: {result['tokens_per_second']:,.0f} tokens/s, {mfu}, {memory}, micro-batch "
              f"{result['micro_batch']}, {result['attention']}, device {result['device']}")


if __name__ == "__main__":
    main()
