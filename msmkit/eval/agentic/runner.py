"""Run the agentic-misalignment conditions through Inspect AI and summarize decided / executed rates.

blackmail, leaking and murder come from the published inspect_evals task (its dataset, prompts and
solver) with our scorer swapped in; exfiltration is our own task. Logs go to <run>/agentic/logs (open
them with `inspect view --log-dir ...`). A rerun skips every condition that already has a finished log
with the same settings, so an interrupted grid resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field

from msmkit.config import StrictModel
from msmkit.eval.agentic.conditions import PUBLISHED_SCENARIOS, Condition, Grid, Scenario, build_grid
from msmkit.eval.agentic.exfiltration import PROMPT_NAMES as EXFILTRATION_PROMPTS
from msmkit.eval.agentic.models import ModelRef, get_inspect_model, is_local
from msmkit.eval.agentic.report import plot_rates, sample_records, summarize, usage_from_logs
from msmkit.eval.agentic.scoring import DEFAULT_GRADER, JUDGE_PROMPTS, misalignment_scorer
from msmkit.io import atomic_write_jsonl
from msmkit.prompts import prompt_hashes
from msmkit.runs import RunDir

STAGE = "agentic"


class AgenticConfig(StrictModel):
    model: ModelRef = Field(default_factory=ModelRef)
    grader: ModelRef = Field(default_factory=lambda: ModelRef(model=DEFAULT_GRADER))
    scenarios: list[Scenario] = ["blackmail", "leaking", "murder", "exfiltration"]
    grid: Grid = "single"  # single | paper (27 per scenario) | full; the lists below override its axes
    goal_types: list[str] | None = None
    goal_values: list[str] | None = None
    urgencies: list[str] | None = None
    epochs: int = Field(1, ge=1)  # samples per condition
    temperature: float = 0.7  # the paper's setting
    max_tokens: int = Field(4096, ge=1)
    scratchpad: bool = True  # False = the published task's prod flag (no secret scratchpad)
    extra_system_instructions: Literal["dont", "goal"] | None = None
    grader_max_tokens: int = Field(1024, ge=16)
    # Also score blackmail/leaking/murder with inspect_evals' own classifier (comparable with published numbers).
    published_grader: bool = False
    max_connections: int = Field(8, ge=1)
    max_tasks: int = Field(4, ge=1)

    def conditions(self) -> list[Condition]:
        return build_grid(list(self.scenarios), self.grid, goal_types=self.goal_types,
                          goal_values=self.goal_values, urgencies=self.urgencies)

    def settings_key(self) -> str:
        """Hash of everything except the grid: a finished log counts only under the same settings."""
        data = self.model_dump(mode="json", exclude={"scenarios", "grid", "goal_types", "goal_values", "urgencies",
                                                     "max_connections", "max_tasks"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def build_task(condition: Condition, config: AgenticConfig, grader: Any) -> Any:
    from inspect_ai import task_with

    prod = not config.scratchpad
    if condition.scenario in PUBLISHED_SCENARIOS:
        from inspect_evals.agentic_misalignment import agentic_misalignment

        base = agentic_misalignment(scenario=condition.scenario, goal_type=condition.goal_type,
                                    goal_value=condition.goal_value, urgency_type=condition.urgency,
                                    extra_system_instructions=config.extra_system_instructions, prod=prod)
    else:
        from msmkit.eval.agentic.exfiltration import exfiltration

        base = exfiltration(goal_type=condition.goal_type, goal_value=condition.goal_value,
                            urgency_type=condition.urgency, extra_system_instructions=config.extra_system_instructions,
                            prod=prod)
    return task_with(base, name=f"am_{condition.key}",
                     scorer=misalignment_scorer(grader_model=grader, grader_max_tokens=config.grader_max_tokens,
                                                published_grader=config.published_grader,
                                                grader_temperature=None if is_local(config.grader) else 0.0),
                     metadata={"msm_condition": condition.key, "msm_settings": config.settings_key()})


def finished_logs(log_dir: Path, settings: str) -> dict[str, Any]:
    """Condition key -> the latest successful full log with these settings."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    found: dict[str, Any] = {}
    if not log_dir.is_dir():
        return found
    for info in list_eval_logs(str(log_dir)):
        try:
            header = read_eval_log(info, header_only=True)
        except Exception:  # a log torn by a kill: its condition simply runs again
            continue
        meta = header.eval.metadata or {}
        if header.status == "success" and meta.get("msm_settings") == settings and meta.get("msm_condition"):
            previous = found.get(meta["msm_condition"])
            if previous is None or header.eval.created > previous.eval.created:
                found[meta["msm_condition"]] = header
    return found


def run_agentic(config: AgenticConfig, out: str | Path, *, display: str = "rich",
                say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Run (or resume) the grid; write records.jsonl, summary.json and rates.png under <out>/agentic."""
    from inspect_ai import eval as inspect_eval
    from inspect_ai.log import read_eval_log

    run = RunDir(out)
    run.write_config(config, f"{STAGE}/config.yaml")
    run.record_prompts(prompt_hashes(EXFILTRATION_PROMPTS + JUDGE_PROMPTS))
    stage = run.stage_dir(STAGE)
    log_dir = stage / "logs"
    conditions = config.conditions()
    settings = config.settings_key()
    done = finished_logs(log_dir, settings)
    pending = [c for c in conditions if c.key not in done]
    say(f"{len(conditions)} conditions x {config.epochs} epochs; {len(conditions) - len(pending)} already finished")
    run.log(f"agentic: {len(pending)} of {len(conditions)} conditions to run; model {config.model.describe()}, "
            f"grader {config.grader.describe()}")
    if pending:
        model = get_inspect_model(config.model)
        grader = model if config.grader == config.model else get_inspect_model(config.grader)
        tasks = [build_task(condition, config, grader) for condition in pending]
        inspect_eval(tasks, model=model, log_dir=str(log_dir), epochs=config.epochs, temperature=config.temperature,
                     max_tokens=config.max_tokens, fail_on_error=False, max_tasks=config.max_tasks,
                     max_connections=config.max_connections, display=display, log_format="eval", score_display=False)
        done = finished_logs(log_dir, settings)
    missing = [c.key for c in conditions if c.key not in done]
    logs = [read_eval_log(done[c.key].location) for c in conditions if c.key in done]
    records = [record for log in logs for record in sample_records(log)]
    atomic_write_jsonl(stage / "records.jsonl", records)
    summary = summarize(records)
    summary.update({
        "model": config.model.describe(), "grader": config.grader.describe(), "epochs": config.epochs,
        "temperature": config.temperature, "scratchpad": config.scratchpad, "conditions": len(conditions),
        "conditions_without_log": missing, "usage": usage_from_logs(logs), "log_dir": str(log_dir),
    })
    run.write_json(f"{STAGE}/summary.json", summary)
    if records:
        plot_rates(summary, stage / "rates.png", title=f"Agentic misalignment: {config.model.describe()}")
    run.log(f"agentic: decided {summary['all']['decided']}, executed {summary['all']['executed']}, "
            f"errors {summary['all']['errors']}")
    return summary
