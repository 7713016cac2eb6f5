"""The report's check against the paper: each arm named by the paper (`paper_arm`, or found from its released
adapter) beside the paper's figure for it, with the difference, pass/fail at the config's tolerance, n, and what
differs from the paper's setup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from msmkit.experiment.plan import Plan
from msmkit.experiment.report_data import ArmResult
from msmkit.hub import is_hub_ref

_DEFAULT_EVALS = {"agentic: decided": ("agentic_misalignment", None),
                  "agentic: executed": ("agentic_misalignment", "executed")}


def _figure_eval(eval_name: str, explicit: dict[str, str]) -> tuple[str, str | None] | None:
    """(figure eval, metric or None for the figure's own) of a report metric."""
    if eval_name in explicit:
        return explicit[eval_name], None
    if eval_name in _DEFAULT_EVALS:
        return _DEFAULT_EVALS[eval_name]
    if eval_name.startswith("values: "):
        return eval_name.removeprefix("values: ").replace("-", "_"), None
    return None


def measured_setup(plan: Plan, arm_adapter: str | None) -> dict[str, Any]:
    """What msmkit knows of how an arm was measured, in the figures' setup vocabulary."""
    config = plan.config
    setup: dict[str, Any] = {"model": config.base_model, "adapters": "released" if arm_adapter and
                             is_hub_ref(arm_adapter) else "own-training",
                             "prompt": "msmkit", "orders": "both"}
    if arm_adapter:
        setup["template"] = "adapter-own"  # msmkit prompts an adapter with the template it carries
    suites = {settings.suite for settings in config.evals}
    if "values" in suites:
        setup["scorer"] = "logprob"
    for settings in config.evals:
        if settings.suite == "agentic":
            agentic = settings.agentic_config(config.base_model)
            setup.update(epochs=agentic.epochs, temperature=agentic.temperature, max_tokens=agentic.max_tokens,
                         grader=agentic.grader.model.split("/", 1)[-1], persona="model_name",
                         scratchpad="kept" if agentic.uses_scratchpad() else "removed",
                         grid="paper-27" if agentic.grid == "paper" else agentic.grid)
    return {**setup, **(config.gate.setup if config.gate else {})}


def gate_section(plan: Plan, results: list[ArmResult]) -> dict[str, Any] | None:
    """The gate report (as data) for a config with a `gate:` section, else None."""
    from msmkit.paper.figures import load_figures
    from msmkit.paper.gate import MeasuredCell, gate, paper_arm_for_adapter

    config = plan.config
    if config.gate is None:
        return None
    paper_arms: dict[str, str] = {}
    adapters: dict[str, str | None] = {}
    for arm in config.arms:
        found = arm.paper_arm or (paper_arm_for_adapter(arm.adapter)[1] if arm.adapter and is_hub_ref(arm.adapter)
                                  and paper_arm_for_adapter(arm.adapter) else None)
        if found:
            paper_arms[arm.name], adapters[arm.name] = found, arm.adapter
    cells = []
    for result in results:
        target = _figure_eval(result.eval_name, config.gate.evals)
        if result.arm not in paper_arms or target is None or result.mean != result.mean:  # NaN: nothing scored
            continue
        figure_eval, metric = target
        cells.append(MeasuredCell(paper_arms[result.arm], figure_eval, result.mean, result.ci_low, result.ci_high,
                                  result.n_outcomes or result.n_items,
                                  measured_setup(plan, adapters[result.arm]), metric=metric))
    figures = None
    if config.gate.figures_file:
        path = Path(config.gate.figures_file)
        figures = load_figures(path if path.is_absolute() else plan.config_dir / path)
    report = gate(cells, figures=figures, figure_ids=config.gate.figures, tolerance=config.gate.tolerance,
                  reference=config.gate.reference)
    return {**report.to_dict(), "markdown": report.to_markdown(),
            "arms": {arm: paper for arm, paper in paper_arms.items()}}


def released_inputs(config: Any) -> list[tuple[str, str]]:
    """Every released artifact an experiment reads by reference: (reference, "model" or "dataset")."""
    found = [(arm.adapter, "model") for arm in config.arms if arm.adapter and is_hub_ref(arm.adapter)]
    if is_hub_ref(config.base_model):
        found.append((config.base_model, "model"))
    for settings in config.evals:
        found += [(item, "dataset") for item in getattr(settings, "items", []) if is_hub_ref(item)]
    return list(dict.fromkeys(found))
