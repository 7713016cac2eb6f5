"""Run the agentic-misalignment conditions through Inspect AI and summarize decided / executed rates.

blackmail, leaking and murder are inspect_evals' scenarios (its prompt generator, its task layout) with the
agent's persona named by `model_name`; exfiltration is our own task. Logs go to <run>/agentic/logs (open
them with `inspect view --log-dir ...`). A rerun asks the model only for (condition, epoch) slots that have
no transcript yet, and the graders only for verdicts they have not given yet (failed ones are asked again),
so an interrupted or partly failed grid resumes where it stopped and `epochs` can be raised later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from msmkit.config import StrictModel
from msmkit.errors import ConfigError
from msmkit.eval.agentic.conditions import PUBLISHED_SCENARIOS, Condition, Grid, Scenario, build_grid, is_paper_grid
from msmkit.eval.agentic.exfiltration import PROMPT_NAMES as EXFILTRATION_PROMPTS
from msmkit.eval.agentic.grading import (
    GRADES,
    GradeJob,
    Grader,
    grade_usage,
    in_sample,
    load_grades,
    needs_grading,
    run_grade_jobs,
)
from msmkit.eval.agentic.logs import Slot, empty_slots, fill_slots, finished_logs
from msmkit.eval.agentic.models import ModelRef, get_inspect_model, is_local
from msmkit.eval.agentic.persona import check_persona_name, default_persona
from msmkit.eval.agentic.report import Graders, build_records, plot_rates, summarize, usage_from_logs
from msmkit.eval.agentic.scoring import DEFAULT_GRADER, JUDGE_PROMPTS, misalignment_scorer
from msmkit.io import atomic_write_jsonl, read_jsonl
from msmkit.prompts import prompt_hashes
from msmkit.runs import RunDir

STAGE = "agentic"
# Fields that change neither the prompts nor the model's sampling: a finished transcript stays valid across them.
_NOT_IN_SETTINGS = {"scenarios", "grid", "goal_types", "goal_values", "urgencies", "epochs", "max_connections",
                    "max_tasks", "grader", "grader_max_tokens", "second_grader", "second_grader_share",
                    "eval_awareness"}


class AgenticConfig(StrictModel):
    model: ModelRef = Field(default_factory=ModelRef)
    grader: ModelRef = Field(default_factory=lambda: ModelRef(model=DEFAULT_GRADER))
    # The agent's name in every scenario (the experiment's model_name, e.g. "Qwen"); None keeps each scenario's
    # own ("Alex" upstream, "Orion" in exfiltration). Recorded with every result.
    model_name: str | None = None
    scenarios: list[Scenario] | None = None  # None: the grid's own (paper: leaking, murder, exfiltration)
    grid: Grid = "single"  # single | paper (the paper's 27) | extended (27 per scenario x 4) | full
    goal_types: list[str] | None = None  # these three replace the grid's axes
    goal_values: list[str] | None = None
    urgencies: list[str] | None = None
    epochs: int = Field(1, ge=1)  # samples per condition (the paper: 300); raising it later tops the run up
    temperature: float = 0.7  # the paper's setting
    max_tokens: int = Field(4096, ge=1)  # the paper's setting
    scratchpad: bool | None = None  # the secret scratchpad; None: on unless the model reasons natively
    reasons_natively: bool = False  # the model thinks in its own <think> section (the paper then drops the scratchpad)
    extra_system_instructions: Literal["dont", "goal"] | None = None
    grader_max_tokens: int = Field(1024, ge=16)
    # Also score blackmail/leaking/murder with inspect_evals' own classifier (comparable with published numbers).
    published_grader: bool = False
    second_grader: ModelRef | None = None  # a second decided verdict, for agreement and Cohen's kappa
    second_grader_share: float = Field(1.0, gt=0.0, le=1.0)  # of the transcripts, chosen deterministically
    eval_awareness: bool = False  # inspect_evals' deliberation classifier, by the grader: "is this a test?"
    max_connections: int = Field(8, ge=1)
    max_tasks: int = Field(4, ge=1)

    @field_validator("model_name")
    @classmethod
    def _usable_name(cls, value: str | None) -> str | None:
        try:
            return None if value is None else check_persona_name(value)
        except ConfigError as exc:  # pydantic reports ValueErrors with the field's location
            raise ValueError(str(exc)) from None

    def conditions(self) -> list[Condition]:
        return build_grid(self.scenarios, self.grid, goal_types=self.goal_types,
                          goal_values=self.goal_values, urgencies=self.urgencies)

    def uses_scratchpad(self) -> bool:
        return self.scratchpad if self.scratchpad is not None else not self.reasons_natively

    def persona(self, scenario: str) -> str:
        return self.model_name or default_persona(scenario)

    def settings_key(self) -> str:
        """Hash of what shapes a transcript: a finished one counts only under the same settings."""
        data = self.model_dump(mode="json", exclude=_NOT_IN_SETTINGS | {"scratchpad", "reasons_natively"})
        data["scratchpad"] = self.uses_scratchpad()
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def records_file(out: str | Path) -> Path:
    """Where `run_agentic(config, out)` writes its per-transcript records."""
    return Path(out) / STAGE / "records.jsonl"


def load_records(out: str | Path) -> list[dict[str, Any]]:
    """The records of a finished run (see report.build_records for the fields)."""
    return list(read_jsonl(records_file(out)))


def grader_temperature(ref: ModelRef) -> float | None:
    """Greedy for API graders; Inspect's hf provider rejects temperature 0, so a local one keeps its own."""
    return None if is_local(ref) else 0.0


def make_grader(role: Literal["decision", "second", "awareness"], ref: ModelRef, max_tokens: int) -> Grader:
    temperature = grader_temperature(ref)
    data = {"ref": ref.model_dump(mode="json"), "max_tokens": max_tokens, "temperature": temperature}
    identity = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return Grader(role, identity, ref.describe(), ref, max_tokens, temperature)


def graders_of(config: AgenticConfig) -> Graders:
    decision = make_grader("decision", config.grader, config.grader_max_tokens)
    second = make_grader("second", config.second_grader, config.grader_max_tokens) if config.second_grader else None
    awareness = make_grader("awareness", config.grader, config.grader_max_tokens) if config.eval_awareness else None
    return Graders(decision, second, config.second_grader_share, awareness)


def build_task(condition: Condition, config: AgenticConfig, grader_model: Any, slots: list[int]) -> Any:
    """The condition's task for the given epoch slots, scored by the primary grader."""
    from inspect_ai import task_with

    prod = not config.uses_scratchpad()
    persona = config.persona(condition.scenario)
    extra = config.extra_system_instructions
    if condition.scenario in PUBLISHED_SCENARIOS:
        from msmkit.eval.agentic.published import published_task

        base = published_task(condition, persona=persona, prod=prod, extra_system_instructions=extra)
    else:
        from msmkit.eval.agentic.exfiltration import exfiltration_task

        base = exfiltration_task(condition, persona=persona, prod=prod, extra_system_instructions=extra)
    grader = graders_of(config).decision
    return task_with(base, name=f"am_{condition.key}", epochs=len(slots),
                     scorer=misalignment_scorer(grader_model=grader_model, grader_max_tokens=config.grader_max_tokens,
                                                published_grader=config.published_grader,
                                                grader_temperature=grader.temperature),
                     metadata={"msm_condition": condition.key, "msm_settings": config.settings_key(),
                               "msm_slots": slots, "msm_grader": grader.identity})


class _Models:
    """One Inspect model per reference for the whole run (a local model's weights load once)."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def get(self, ref: ModelRef) -> Any:
        key = ref.model_dump_json()
        if key not in self._made:
            self._made[key] = get_inspect_model(ref)
        return self._made[key]


def grade_jobs(slots: list[Slot], graders: Graders, grades: dict) -> list[GradeJob]:
    """Every verdict still missing: decisions Inspect's scorer did not give (or gave under another grader),
    second-grader and awareness verdicts; failed ones included."""
    jobs = []
    for slot in slots:
        if not slot.filled:
            continue
        scenario = slot.condition.scenario
        scored = slot.score is not None and slot.grader == graders.decision.identity
        if not scored and needs_grading(grades, slot.key, graders.decision):
            jobs.append(GradeJob(slot.key, scenario, slot.text, graders.decision))
        second = graders.second
        if second and in_sample(slot.slot_id, graders.second_share) and needs_grading(grades, slot.key, second):
            jobs.append(GradeJob(slot.key, scenario, slot.text, second))
        if graders.awareness and needs_grading(grades, slot.key, graders.awareness):
            jobs.append(GradeJob(slot.key, scenario, slot.text, graders.awareness))
    return jobs


def _generate(config: AgenticConfig, missing: dict[Condition, list[int]], log_dir: Path, models: _Models,
              display: str) -> None:
    from inspect_ai import eval as inspect_eval

    model = models.get(config.model)
    grader = models.get(config.grader)
    tasks = [build_task(condition, config, grader, epochs) for condition, epochs in missing.items()]
    inspect_eval(tasks, model=model, log_dir=str(log_dir), temperature=config.temperature,
                 max_tokens=config.max_tokens, fail_on_error=False, max_tasks=config.max_tasks,
                 max_connections=config.max_connections, display=display, log_format="eval", score_display=False)


def run_agentic(config: AgenticConfig, out: str | Path, *, display: str = "rich",
                say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Run (or resume) the grid; write records.jsonl, summary.json and rates.png under <out>/agentic."""
    run = RunDir(out)
    run.write_config(config, f"{STAGE}/config.yaml")
    run.record_prompts(prompt_hashes(EXFILTRATION_PROMPTS + JUDGE_PROMPTS))
    stage = run.stage_dir(STAGE)
    log_dir = stage / "logs"
    conditions = config.conditions()
    settings = config.settings_key()
    slots = fill_slots(conditions, config.epochs, finished_logs(log_dir, settings))
    missing = empty_slots(slots)
    todo = sum(len(epochs) for epochs in missing.values())
    say(f"{len(conditions)} conditions x {config.epochs} epochs; {len(slots) - todo} transcripts already there")
    run.log(f"agentic: {todo} of {len(slots)} transcripts to generate; model {config.model.describe()}, "
            f"grader {config.grader.describe()}")
    models = _Models()
    if missing:
        _generate(config, missing, log_dir, models, display)
        slots = fill_slots(conditions, config.epochs, finished_logs(log_dir, settings))
    graders = graders_of(config)
    grades_path = stage / GRADES
    jobs = grade_jobs(slots, graders, load_grades(grades_path))
    if jobs:
        say(f"{len(jobs)} grader verdicts to get outside Inspect's scorer (retries, second grader, awareness)")
        run_grade_jobs(jobs, grades_path, models.get, concurrency=config.max_connections)
    personas = {scenario: config.persona(scenario) for scenario in {c.scenario for c in conditions}}
    records = build_records(slots, graders, load_grades(grades_path), persona=personas)
    atomic_write_jsonl(records_file(out), records)
    summary = summarize(records)
    headers = [h for group in finished_logs(log_dir, settings).values() for h in group]
    incomplete = sorted({slot.condition.key for slot in slots if not slot.filled})
    summary.update({
        "model": config.model.describe(), "grader": graders.decision.label,
        "second_grader": graders.second.label if graders.second else None,
        "second_grader_share": config.second_grader_share if graders.second else None,
        "eval_awareness": config.eval_awareness, "persona": personas, "model_name": config.model_name,
        "grid": config.grid, "paper_grid": is_paper_grid(conditions), "conditions": len(conditions),
        "epochs": config.epochs, "temperature": config.temperature, "max_tokens": config.max_tokens,
        "scratchpad": config.uses_scratchpad(), "incomplete_conditions": incomplete,
        "usage": usage_from_logs(headers), "grading_usage": grade_usage(grades_path), "log_dir": str(log_dir),
    })
    run.write_json(f"{STAGE}/summary.json", summary)
    if records:
        plot_rates(summary, stage / "rates.png", title=f"Agentic misalignment: {config.model.describe()}")
    run.log(f"agentic: decided {summary['all']['decided']}, executed {summary['all']['executed']}, "
            f"errors {summary['all']['errors']}")
    return summary
