"""`msm train`: midtraining, AFT, or both in order. Same command on a laptop CPU and under
`accelerate launch` on many GPUs (`accelerate launch -m msmkit.train ...`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from msmkit.errors import ConfigError
from msmkit.train.launch import ACCELERATE_CONFIGS, accelerate_config_path

train_app = typer.Typer(help="Train: midtraining on a document corpus, then AFT on chat data (LoRA or full).",
                        invoke_without_command=True)

_CONFIG = typer.Option(None, "--config", help="YAML with `midtrain:` and `aft:` sections (see msmkit.train.config).")
_OUT = typer.Option(None, "--out", help="Run folder (created; rerunning resumes from the last checkpoint).")
_MODEL = typer.Option(None, "--model", help="Base model: 'embedded', a model folder, an adapter folder or a cached "
                      "hub name.")
_FEW = typer.Option(False, "--allow-few-steps", help="Train even when a stage takes fewer optimizer steps than "
                    "guards.min_optimizer_steps (results may be a fake null).")
_FULL = typer.Option(False, "--full", help="Full fine-tuning instead of LoRA.")
_MAX_STEPS = typer.Option(None, "--max-steps", help="Stop each stage after this many optimizer steps.")


def _overrides(stage: str, *, data: Optional[Path], model: Optional[str], allow_few_steps: bool, full: bool,
               max_steps: Optional[int]) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if data is not None:
        section["data"] = {"path": str(data)}
    if model is not None:
        section["model"] = {"name": model}
    if allow_few_steps:
        section["guards"] = {"allow_few_steps": True}
    if full:
        section["lora"] = {"enabled": False}
    if max_steps is not None:
        section["optim"] = {"max_steps": max_steps}
    return {stage: section} if section else {}


def _run(config: Optional[Path], out: Optional[Path], stages: tuple[str, ...], overrides: dict[str, Any]) -> None:
    from msmkit.train import load_train_config, run_training

    if out is None:
        raise ConfigError("--out is required: the run folder for checkpoints, the trained model and the run record")
    cfg = load_train_config(config, overrides)
    results = run_training(cfg, out, stages=stages)
    for name, result in results.items():
        typer.echo(f"{name}: {result.model_dir}" + (" (unchanged, not retrained)" if result.skipped else ""))


@train_app.callback()
def train_both(ctx: typer.Context, config: Optional[Path] = _CONFIG, out: Optional[Path] = _OUT,
               corpus: Optional[Path] = typer.Option(None, "--corpus", help="Midtraining corpus (JSONL or datasets "
                                                     "folder with `text`)."),
               chat: Optional[Path] = typer.Option(None, "--chat", help="AFT chat data (JSONL or datasets folder "
                                                   "with `messages`)."),
               model: Optional[str] = _MODEL, allow_few_steps: bool = _FEW, full: bool = _FULL,
               max_steps: Optional[int] = _MAX_STEPS) -> None:
    """Midtraining, then AFT continuing its adapter (run with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    overrides = _overrides("midtrain", data=corpus, model=model, allow_few_steps=allow_few_steps, full=full,
                           max_steps=max_steps)
    aft = _overrides("aft", data=chat, model=None, allow_few_steps=allow_few_steps, full=full, max_steps=max_steps)
    _run(config, out, ("midtrain", "aft"), {**overrides, **aft})


@train_app.command("midtrain")
def midtrain(config: Optional[Path] = _CONFIG, out: Optional[Path] = _OUT,
             data: Optional[Path] = typer.Option(None, "--data", help="Corpus JSONL or datasets folder (`text`)."),
             model: Optional[str] = _MODEL, allow_few_steps: bool = _FEW, full: bool = _FULL,
             max_steps: Optional[int] = _MAX_STEPS) -> None:
    """Continued pretraining on documents: raw text + EOS, loss on every token, packed without cross-talk."""
    _run(config, out, ("midtrain",), _overrides("midtrain", data=data, model=model, allow_few_steps=allow_few_steps,
                                                full=full, max_steps=max_steps))


@train_app.command("aft")
def aft(config: Optional[Path] = _CONFIG, out: Optional[Path] = _OUT,
        data: Optional[Path] = typer.Option(None, "--data", help="Chat JSONL or datasets folder (`messages`)."),
        model: Optional[str] = typer.Option(None, "--model", help="Base model or the midtraining adapter folder "
                                            "(its adapter is trained further by default)."),
        allow_few_steps: bool = _FEW, full: bool = _FULL, max_steps: Optional[int] = _MAX_STEPS) -> None:
    """Alignment fine-tuning on chats: chat template applied, loss on assistant tokens only."""
    _run(config, out, ("aft",), _overrides("aft", data=data, model=model, allow_few_steps=allow_few_steps,
                                           full=full, max_steps=max_steps))


@train_app.command("accelerate-config")
def accelerate_config(name: str = typer.Argument(..., help=f"One of: {', '.join(ACCELERATE_CONFIGS)}.")) -> None:
    """Print the path of a packaged accelerate config, for `accelerate launch --config_file ...`."""
    if name not in ACCELERATE_CONFIGS:
        raise ConfigError(f"unknown accelerate config {name!r}; choose one of {', '.join(ACCELERATE_CONFIGS)}")
    typer.echo(accelerate_config_path(name))


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
