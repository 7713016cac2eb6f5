"""One training stage (midtraining or AFT) on TRL's SFTTrainer, the same code on one CPU or many GPUs.

Launch plainly (`msm train ...`) or under `accelerate launch` (DeepSpeed ZeRO-3 / FSDP2 configs in
msmkit/train/accelerate/). Loss is TRL's fused LM head: log-probabilities computed in tiles of the
vocabulary, so full (tokens x vocab) fp32 logits are never materialised (Gemma's vocab is 262k).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from msmkit.errors import ConfigError, MsmError
from msmkit.fingerprint import content_hash
from msmkit.io import atomic_write_json
from msmkit.models.loading import own_chat_template
from msmkit.runs import RunDir, package_versions
from msmkit.train.config import AftTrainConfig, TrainStageConfig
from msmkit.train.data import TokenizedRows, read_chats, read_corpus, tokenize_chats, tokenize_documents
from msmkit.train.outputs import Kind, TrainingOutputs
from msmkit.train.packing import DocumentBoundaryCollator, build_sequences, sequence_stats
from msmkit.train.steps import fit_batch_to_steps, planned_steps
from msmkit.train.templates import ChosenTemplate, choose_chat_template, stop_token_ids

logger = logging.getLogger(__name__)


class TooFewStepsError(MsmError):
    """The stage would take too few optimizer steps to show an effect (a fake null result)."""


@dataclass
class TrainingResult:
    output_dir: Path
    model_dir: Path
    record: dict[str, Any]
    skipped: bool = False


def train_model(kind: Kind, cfg: TrainStageConfig, output_dir: str | Path, *, run: RunDir | None = None,
              callbacks: list[Any] | None = None) -> TrainingResult:
    output_dir = Path(output_dir)
    state = process_state()
    fingerprint = _fingerprint(kind, cfg)
    done = _finished_record(output_dir, fingerprint)
    if done is not None:
        _say(run, f"{kind}: inputs unchanged since the finished run in {output_dir}; not training again")
        return TrainingResult(output_dir, output_dir / TrainingOutputs.MODEL, done, skipped=True)
    if not cfg.data.path:
        raise ConfigError(f"{kind}.data.path is not set; give the {'corpus' if kind == 'midtrain' else 'chat'} "
                          "JSONL file or datasets folder")

    _claim_folder(output_dir, fingerprint, state)
    model, tokenizer, init = _load_model(kind, cfg)
    adapter_base = None
    if init == "merged-then-fresh-lora":
        # The new adapter sits on base + midtraining adapter merged; keep that base beside it so it loads.
        adapter_base = output_dir / TrainingOutputs.BASE
        if state.is_main_process and not (adapter_base / "config.json").is_file():
            model.save_pretrained(str(adapter_base))
            tokenizer.save_pretrained(str(adapter_base))
        state.wait_for_everyone()
    template = None
    if kind == "midtrain":
        tokens = tokenize_documents(read_corpus(cfg.data.path, cfg.data.max_rows), tokenizer)
    else:
        assert isinstance(cfg, AftTrainConfig)
        # An adapter's (or checkpoint's) own template trains it and stays its template: never a substitute.
        template = choose_chat_template(tokenizer, cfg.chat_template, own=own_chat_template(cfg.model.name))
        tokenizer.chat_template = template.prompt_template  # saved with every checkpoint: evaluation uses it
        chats = read_chats(cfg.data.path, cot=cfg.data.cot, max_rows=cfg.data.max_rows)
        tokens = tokenize_chats(chats, tokenizer, template.text, max_length=cfg.data.max_length)
    if not tokens.rows:
        raise MsmError(f"{kind}: {cfg.data.path} gives no trainable rows ({tokens.dropped})")
    dataset = build_sequences(tokens.rows, cfg.data.max_length, pack=cfg.packing.enabled)
    stats = sequence_stats(dataset, cfg.data.max_length, cfg.optim.per_device_batch_size)
    if cfg.guards.fit_batch_to_steps:
        cfg = fit_batch_to_steps(cfg, stats["sequences"], state.num_processes)
    planned = planned_steps(stats["sequences"], cfg, state.num_processes)
    check_step_guard(kind, planned, stats, cfg, state.num_processes)

    flatten = cfg.model.attn_implementation.startswith(("flash", "kernels"))
    collator = DocumentBoundaryCollator(tokenizer.pad_token_id, flatten=flatten)
    trainer = _build_trainer(model, tokenizer, dataset, collator, cfg, output_dir, init, planned, callbacks)
    last = _last_checkpoint(output_dir) if cfg.checkpoints.resume else None
    if last:
        _say(run, f"{kind}: resuming from {last}")
    started = time.monotonic()
    first_step = _checkpoint_step(last)
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.monotonic() - started

    model_dir = output_dir / TrainingOutputs.MODEL
    record = _record(kind, cfg, tokens, stats, planned, trainer, result, collator, seconds, template, init,
                     fingerprint, resumed_from=last, first_step=first_step)
    if record["padding_fraction"] > cfg.guards.max_padding_fraction:
        _say(run, f"{kind}: WARNING padding was {record['padding_fraction']:.1%} of the tokens fed to the model "
                  f"(guards.max_padding_fraction {cfg.guards.max_padding_fraction:.0%}); "
                  + ("with this little data the last pack is part-empty" if cfg.packing.enabled
                     else "enable packing (packing.enabled: true) to stop paying for padding"))
    _save_outputs(trainer, tokenizer, cfg, model_dir, output_dir, template, adapter_base)
    if state.is_main_process:
        atomic_write_json(output_dir / TrainingOutputs.RECORD, record)
        if run is not None:
            run.write_json(f"{output_dir.name}/{TrainingOutputs.RECORD}" if output_dir.parent == run.path else
                           f"{kind}_{TrainingOutputs.RECORD}", record)
            _say(run, f"{kind}: {record['steps']} steps, {record['tokens']} tokens "
                      f"({record['supervised_tokens']} supervised), padding {record['padding_fraction']:.1%}, "
                      f"final loss {record['final_loss']}")
    state.wait_for_everyone()
    return TrainingResult(output_dir, model_dir, record)


def process_state() -> PartialState:
    """This process's place in the launch. With no GPU, processes started by torchrun / `accelerate launch`
    join one gloo group on CPU (accelerate would otherwise treat each as a lone process)."""
    return PartialState(cpu=not torch.cuda.is_available())


def check_step_guard(kind: str, planned: int, stats: dict[str, Any], cfg: TrainStageConfig, processes: int) -> None:
    minimum = cfg.guards.min_optimizer_steps
    if planned >= minimum or cfg.guards.allow_few_steps:
        if planned < minimum:
            logger.warning("%s: only %s optimizer steps (threshold %s); allowed by allow_few_steps", kind, planned,
                           minimum)
        return
    global_batch = cfg.optim.per_device_batch_size * cfg.optim.gradient_accumulation_steps * processes
    wanted_batch = max(1, stats["sequences"] // max(minimum, 1))
    raise TooFewStepsError(
        f"{kind}: this stage would take only {planned} optimizer steps ({stats['sequences']} sequences of up to "
        f"{stats['max_length']} tokens, global batch {global_batch}, {cfg.optim.epochs:g} epoch(s)); the threshold "
        f"is {minimum}. Too few steps can fake a null result (a replication saw no effect at 31 steps and a clear "
        f"one at ~250 on the same tokens). Fix: lower the batch size (optim.per_device_batch_size x "
        f"gradient_accumulation_steps <= {wanted_batch}), use more data, or shorten data.max_length; or pass "
        "--allow-few-steps (guards.allow_few_steps: true) if you know what you are doing.")


def _load_model(kind: Kind, cfg: TrainStageConfig) -> tuple[Any, Any, str]:
    """(model, tokenizer, how it starts). AFT on a LoRA adapter continues it unless init is 'fresh'."""
    from msmkit.models.loading import load_causal_lm, resolve_dtype, resolve_model_source

    accelerator_device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype(cfg.model.dtype, accelerator_device)
    source = resolve_model_source(cfg.model.name)
    continue_adapter = (kind == "aft" and source.adapter is not None and cfg.lora.enabled
                        and getattr(cfg, "init", "continue") == "continue")
    model, tokenizer = load_causal_lm(cfg.model.name, dtype=dtype, device="cpu",
                                      trainable_adapter=continue_adapter,
                                      merge_adapter=source.adapter is not None and not continue_adapter)
    base = model.get_base_model() if continue_adapter else model
    base.set_attn_implementation(cfg.model.attn_implementation)
    if source.adapter is None:
        init = "fresh-lora" if cfg.lora.enabled else "full"
    else:
        init = "continue-adapter" if continue_adapter else ("merged-then-fresh-lora" if cfg.lora.enabled
                                                            else "merged-then-full")
    tokenizer.padding_side = "right"
    return model, tokenizer, init


def warmup_steps(cfg: TrainStageConfig, planned: int) -> int:
    """optim.warmup_ratio of the planned optimizer steps, as a step count: transformers 4.x reads a float
    `warmup_steps` as whole steps (0.05 would mean none) and 5.x deprecates `warmup_ratio`."""
    return math.ceil(cfg.optim.warmup_ratio * planned)


def _build_trainer(model, tokenizer, dataset, collator, cfg: TrainStageConfig, output_dir: Path, init: str,
                   planned: int, callbacks: list[Any] | None):
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    on_gpu = torch.cuda.is_available()
    bf16 = on_gpu and next(model.parameters()).dtype == torch.bfloat16
    args: dict[str, Any] = dict(
        output_dir=str(output_dir), per_device_train_batch_size=cfg.optim.per_device_batch_size,
        gradient_accumulation_steps=cfg.optim.gradient_accumulation_steps, learning_rate=cfg.optim.learning_rate,
        num_train_epochs=cfg.optim.epochs, max_steps=cfg.optim.max_steps, lr_scheduler_type=cfg.optim.scheduler,
        warmup_steps=warmup_steps(cfg, planned), weight_decay=cfg.optim.weight_decay, optim=cfg.optim.optimizer,
        max_grad_norm=cfg.optim.max_grad_norm, seed=cfg.optim.seed, data_seed=cfg.optim.seed,
        logging_steps=cfg.logging_steps, save_strategy="steps", save_steps=cfg.checkpoints.save_steps,
        save_total_limit=cfg.checkpoints.save_total_limit, report_to="none",
        # TRL's defaults assume a GPU; on CPU there is no bf16 and no gradient checkpointing unless asked.
        bf16=bf16, fp16=False, **{_checkpointing_argument(SFTConfig): cfg.model.gradient_checkpointing},
        packing=False, padding_free=False, max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True},  # rows are tokenized, masked and packed by msmkit
        remove_unused_columns=False, dataloader_drop_last=False, dataloader_pin_memory=on_gpu, use_cpu=not on_gpu,
    )
    clash = set(cfg.trl) & {"packing", "padding_free", "dataset_kwargs", "output_dir", "assistant_only_loss"}
    if clash:
        raise ConfigError(f"trl: {', '.join(sorted(clash))} are set by msmkit (packing and masking happen before "
                          "TRL sees the data); use the packing / data sections instead")
    args.update(cfg.trl)
    try:
        sft_args = SFTConfig(**args)
    except TypeError as exc:
        raise ConfigError(f"trl: {exc}; keys under `trl` must be trl.SFTConfig fields") from None
    peft_config = None
    if cfg.lora.enabled and init in ("fresh-lora", "merged-then-fresh-lora"):
        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                                 target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM", bias="none")
    return SFTTrainer(model=model, args=sft_args, train_dataset=dataset, processing_class=tokenizer,
                      data_collator=collator, peft_config=peft_config, callbacks=callbacks)


def _checkpointing_argument(config_class: type) -> str:
    """transformers 5 renamed `gradient_checkpointing` to `activation_checkpointing`; the old name warns."""
    fields = getattr(config_class, "__dataclass_fields__", {})
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def _checkpoint_step(checkpoint: str | None) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


def _last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None


def _save_outputs(trainer, tokenizer, cfg: TrainStageConfig, model_dir: Path, output_dir: Path,
                  template: ChosenTemplate | None, adapter_base: Path | None) -> None:
    trainer.save_model(str(model_dir))  # adapter (LoRA) or full weights; tokenizer with its chat template
    state = process_state()
    if not state.is_main_process:
        return
    model = trainer.model
    generation = getattr(model, "generation_config", None)
    if template is not None and generation is not None:
        generation.eos_token_id = stop_token_ids(tokenizer, template)
    if generation is not None:
        generation.save_pretrained(str(model_dir))
    _portable_adapter_base(model_dir, cfg, adapter_base)
    if cfg.checkpoints.save_merged and cfg.lora.enabled:
        merged = trainer.accelerator.unwrap_model(model).merge_and_unload(safe_merge=True, progressbar=False)
        merged.save_pretrained(str(output_dir / TrainingOutputs.MERGED))
        tokenizer.save_pretrained(str(output_dir / TrainingOutputs.MERGED))
        if generation is not None:
            generation.save_pretrained(str(output_dir / TrainingOutputs.MERGED))


def _portable_adapter_base(model_dir: Path, cfg: TrainStageConfig, adapter_base: Path | None) -> None:
    """Name the base as the user did ("embedded", a hub name) rather than this machine's cache path."""
    from msmkit.models.loading import resolve_model_source

    adapter_config = model_dir / "adapter_config.json"
    if not adapter_config.is_file():
        return
    source = resolve_model_source(cfg.model.name)
    if adapter_base is not None:
        base_name = str(adapter_base.resolve())
    elif source.adapter is None:
        base_name = cfg.model.name
    else:
        base_name = json.loads((Path(source.adapter) / "adapter_config.json").read_text(encoding="utf-8"))[
            "base_model_name_or_path"]
    data = json.loads(adapter_config.read_text(encoding="utf-8"))
    data["base_model_name_or_path"] = base_name
    atomic_write_json(adapter_config, data)


def _record(kind, cfg, tokens: TokenizedRows, stats, planned, trainer, result, collator, seconds, template, init,
            fingerprint, resumed_from, first_step) -> dict[str, Any]:
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    world = process_state().num_processes
    trained_batches = (trainer.state.global_step - first_step) * cfg.optim.gradient_accumulation_steps
    processed, _ = collator.totals(trained_batches)
    return {
        "stage": kind, "complete": True, "fingerprint": fingerprint, "init": init,
        "source_rows": tokens.source_rows, "rows": len(tokens.rows), "dropped_rows": tokens.dropped,
        "truncated_rows": tokens.truncated, "tokens": tokens.tokens, "supervised_tokens": tokens.supervised_tokens,
        "sequences": stats["sequences"], "segments": stats["segments"], "max_length": stats["max_length"],
        "packing": cfg.packing.enabled,
        "padding_fraction": collator.padding_fraction(trained_batches),
        "processed_tokens": processed,  # real tokens trained in this invocation (this process)
        "tokens_per_second": processed * world / seconds if seconds > 0 else None,
        "padding_fraction_scope": "process 0" if world > 1 else "all",
        "planned_steps": planned, "steps": trainer.state.global_step, "epochs": trainer.state.epoch,
        "processes": world,
        "global_batch": cfg.optim.per_device_batch_size * cfg.optim.gradient_accumulation_steps * world,
        "train_loss": result.training_loss, "final_loss": losses[-1] if losses else None, "losses": losses,
        "seconds": seconds, "resumed_from": resumed_from,
        "chat_template": None if template is None else {
            "source": template.source, "sha256": template.sha256},
        "config": cfg.model_dump(mode="json"), "versions": package_versions(),
    }


def _fingerprint(kind: str, cfg: TrainStageConfig) -> str:
    """The config and the content of every input file: a changed corpus or base model is a new run."""
    digest = hashlib.sha256(json.dumps([kind, cfg.model_dump(mode="json")], sort_keys=True).encode())
    for name in (cfg.data.path, cfg.model.name, getattr(cfg, "chat_template", None)):
        if name and Path(name).exists():
            digest.update(f"{name}:{content_hash(name, skip=('checkpoint-',))}".encode())
    return digest.hexdigest()


def _claim_folder(output_dir: Path, fingerprint: str, state: PartialState) -> None:
    """Checkpoints in a folder belong to one configuration; resuming them under another would mix runs."""
    claim = output_dir / TrainingOutputs.CLAIM
    try:
        previous = json.loads(claim.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError):
        previous = None
    if previous and previous != fingerprint and list(output_dir.glob("checkpoint-*")):
        raise MsmError(f"{output_dir} holds checkpoints of a run with another config or other inputs; resuming "
                       "them would mix the two. Use a new --out folder, or delete that folder to start over")
    state.wait_for_everyone()
    if state.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(claim, {"fingerprint": fingerprint})


def _finished_record(output_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        record = json.loads((output_dir / TrainingOutputs.RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (record.get("complete") and record.get("fingerprint") == fingerprint
            and (output_dir / TrainingOutputs.MODEL).is_dir()):
        return record
    return None


def _say(run: RunDir | None, message: str) -> None:
    logger.info(message)
    if run is not None:
        run.log(message)
    if process_state().is_main_process:
        from rich.console import Console

        Console(stderr=True).print(f"[bold]msm train[/bold] {message}", highlight=False)
