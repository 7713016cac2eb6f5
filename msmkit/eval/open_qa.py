"""Open questions on the spec: generate questions from its sections, answer them with the evaluated model,
judge adherence 1-10 with a rubric; mean score with a bootstrap CI and n.

This is the in-distribution check. The paper found it saturates (about 8/10 for AFT-only and MSM+AFT
alike): a high score says the spec's content was learned, not that it generalizes; the MSM advantage
shows only out of distribution (value generalization, agentic misalignment).

Stages write append-only JSONL keyed by question id (questions.jsonl, answers.jsonl, judgements.jsonl), and
every LLM call goes through the persistent cache, so a rerun pays for nothing twice. A question's last row
counts; answers and judgements whose call failed are recorded with their cause (status "failed") and
asked again on the next run. A judge reply that does not parse is final (status "parse_failure").
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, ClassVar

from pydantic import BaseModel, Field

from msmkit.config import StrictModel
from msmkit.errors import DataError
from msmkit.eval.stats import bootstrap_mean
from msmkit.io import append_jsonl, atomic_write_jsonl, read_jsonl
from msmkit.llm.client import LLMCallFailed, LLMClient
from msmkit.llm.failures import failure_counts, recorded_failures_note, row_call_failed
from msmkit.llm.progress import progress_bar
from msmkit.llm.types import LLMConfig, LLMRequest
from msmkit.prompts import load_prompt, prompt_hashes
from msmkit.runs import RunDir
from msmkit.stages.contract import EvalOutputs

STAGE = "open_qa"
PROMPTS = ["eval_openqa/questions", "eval_openqa/answer_completion", "eval_openqa/judge"]
MIN_SECTION_CHARS = 200  # shorter section bodies (headings of groups, one-liners) get no questions of their own
SATURATION_NOTE = ("In-distribution check: the paper found open-question adherence saturates (~8/10) for AFT-only "
                   "and MSM+AFT alike; differences between arms show up out of distribution, not here.")


class OpenQAOutputs(EvalOutputs):
    """`open_qa/` in a run folder: the questions, the model's answers and the judge's 1-10 scores."""

    QUESTIONS: ClassVar[str] = "questions.jsonl"
    ANSWERS: ClassVar[str] = "answers.jsonl"
    JUDGEMENTS: ClassVar[str] = "judgements.jsonl"
    PLOT: ClassVar[str] = "scores.png"
    MEASURE: ClassVar[str] = "adherence score (1-10)"

    score: dict[str, Any]
    questions: int
    parse_failures: int
    failures: int

    @classmethod
    def from_summary(cls, folder: Path, summary: dict[str, Any]) -> "OpenQAOutputs":
        return cls(folder=folder, score=summary["score"], questions=summary["questions"],
                   parse_failures=summary["parse_failures"],
                   failures=summary["answer_failures"] + summary["judge_failures"])

    def outcomes(self) -> dict[str, dict[str, float]]:
        last = {row["id"]: row for row in read_jsonl(self.folder / STAGE / self.JUDGEMENTS)}
        return {"open_qa: score": {qid: float(row["score"]) for qid, row in last.items() if row.get("status") == "ok"}}

    def notes(self, label: str) -> list[str]:
        if not self.failures and not self.parse_failures:
            return []
        return [f"{label}: {self.failures} answer or judge calls failed finally and {self.parse_failures} scores did "
                "not parse; they are left out of the mean"]


class OpenQAConfig(StrictModel):
    spec: str  # the Model Spec file the questions are about
    questions_file: str | None = None  # bring your own: JSONL with "question" (+ optional "id", "section")
    n_questions: int = Field(150, ge=1)  # the paper used 151
    model_name: str | None = None  # fills {model_name} in the spec
    provider_name: str | None = None
    generator: LLMConfig = Field(default_factory=LLMConfig)  # writes the questions
    model: LLMConfig = Field(default_factory=LLMConfig)  # the evaluated model
    judge: LLMConfig = Field(default_factory=LLMConfig)
    answer_max_tokens: int = Field(1024, ge=1)
    answer_temperature: float = 0.7
    judge_max_tokens: int = Field(512, ge=16)


class Judgement(BaseModel):
    reasoning: str = ""
    score: int = Field(ge=1, le=10)


def _qid(section: str, question: str) -> str:
    return hashlib.sha256(f"{section}\0{question}".encode("utf-8")).hexdigest()[:16]


def spec_sections(config: OpenQAConfig) -> list[dict[str, Any]]:
    """Sections with enough text of their own to ask about: {index, title, text}."""
    from msmkit.spec.load import load_spec

    spec = load_spec(config.spec, model_name=config.model_name, provider_name=config.provider_name, warn=False)
    sections = [{"index": s.index, "title": spec.structure.section_title_path(s.index), "text": s.body.strip()}
                for s in spec.structure.sections if len(s.body.strip()) >= MIN_SECTION_CHARS]
    return sections or [{"index": 0, "title": spec.name, "text": spec.text.strip()}]


def allocate(sections: list[dict[str, Any]], total: int) -> list[int]:
    """Questions per section, proportional to text length, summing to `total` (largest remainders)."""
    weights = [len(s["text"]) for s in sections]
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    for index in sorted(range(len(sections)), key=lambda i: exact[i] - counts[i], reverse=True)[: total - sum(counts)]:
        counts[index] += 1
    return counts


async def generate_questions(config: OpenQAConfig, client: LLMClient) -> tuple[list[dict[str, Any]], list[str]]:
    """(questions, failures): each question {id, section, title, question}; sections whose answer could
    not be parsed are reported, not silently dropped."""
    sections = spec_sections(config)
    template = load_prompt("eval_openqa/questions")
    questions: list[dict[str, Any]] = []
    failures: list[str] = []
    jobs = [(s, n) for s, n in zip(sections, allocate(sections, config.n_questions)) if n > 0]

    async def one(section: dict[str, Any], count: int) -> list[dict[str, Any]]:
        request = LLMRequest.of(template.render(title=section["title"], section=section["text"], count=count),
                                max_tokens=min(8192, 200 + 120 * count), temperature=1.0)
        result = await client.complete_json(request, list[str])
        if not result.ok:
            failures.append(f"section {section['title']!r}: {result.error}")
            return []
        cleaned = [q.strip() for q in result.value if isinstance(q, str) and q.strip()][:count]
        return [{"id": _qid(section["title"], q), "section": section["index"], "title": section["title"],
                 "question": q} for q in cleaned]

    for batch in await asyncio.gather(*(one(s, n) for s, n in jobs)):
        questions += batch
    unique = list({q["id"]: q for q in questions}.values())
    return unique, failures


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    questions = []
    for line, row in enumerate(read_jsonl(path), start=1):
        text = row.get("question")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{line}: each line needs a non-empty 'question' string")
        section = row.get("section")
        questions.append({"id": str(row.get("id") or _qid(str(section), text)), "section": section,
                          "title": row.get("title") or (str(section) if section is not None else None),
                          "question": text.strip()})
    if not questions:
        raise DataError(f"{path}: no questions")
    return questions


def _answer_request(client: LLMClient, question: str, config: OpenQAConfig) -> LLMRequest:
    if client.is_base_model:  # a base model continues a transcript; stop before it writes the next user turn
        prompt = load_prompt("eval_openqa/answer_completion").render(question=question)
        return LLMRequest.of(prompt, max_tokens=config.answer_max_tokens, temperature=config.answer_temperature,
                             stop=("\nUser:",))
    return LLMRequest.of(question, max_tokens=config.answer_max_tokens, temperature=config.answer_temperature)


async def answer_questions(questions: list[dict[str, Any]], client: LLMClient, config: OpenQAConfig,
                           path: Path) -> dict[str, dict[str, Any]]:
    done = {row["id"]: row for row in read_jsonl(path)} if path.exists() else {}
    pending = [q for q in questions if done.get(q["id"], {}).get("status") != "ok"]
    results = await client.complete_many([_answer_request(client, q["question"], config) for q in pending],
                                         description="answers")
    for question, result in zip(pending, results):
        if isinstance(result, LLMCallFailed):
            row = {"id": question["id"], "status": "failed", "error": str(result), "cause": result.cause.to_json()}
        else:
            row = {"id": question["id"], "status": "ok", "answer": result.text.strip(), "truncated": result.truncated}
        append_jsonl(path, row)
        done[question["id"]] = row
    return done


async def judge_answers(questions: list[dict[str, Any]], answers: dict[str, dict[str, Any]], client: LLMClient,
                        config: OpenQAConfig, section_text: Callable[[Any], str], path: Path
                        ) -> dict[str, dict[str, Any]]:
    done = {row["id"]: row for row in read_jsonl(path)} if path.exists() else {}
    template = load_prompt("eval_openqa/judge")
    pending = [q for q in questions if answers.get(q["id"], {}).get("status") == "ok"
               and (q["id"] not in done or row_call_failed(done[q["id"]]))]

    async def one(question: dict[str, Any]) -> None:
        prompt = template.render(title=question["title"] or "the spec", section=section_text(question["section"]),
                                 question=question["question"], answer=answers[question["id"]]["answer"])
        result = await client.complete_json(LLMRequest.of(prompt, max_tokens=config.judge_max_tokens, temperature=0.0),
                                            Judgement)
        row: dict[str, Any] = {"id": question["id"]}
        if result.ok:
            row.update(status="ok", score=result.value.score, reasoning=result.value.reasoning)
        elif result.failure is not None:
            row.update(status="failed", error=result.error, cause=result.failure.cause.to_json())
        else:
            row.update(status="parse_failure", error=result.error)
        append_jsonl(path, row)
        done[question["id"]] = row
        advance()

    with progress_bar("judging answers", total=len(pending)) as advance:
        await asyncio.gather(*(one(q) for q in pending))
    return done


def summarize_open_qa(questions: list[dict[str, Any]], answers: dict[str, dict], judgements: dict[str, dict]
                      ) -> dict[str, Any]:
    scored = [(q, judgements[q["id"]]["score"]) for q in questions
              if judgements.get(q["id"], {}).get("status") == "ok"]
    by_section: dict[str, list[float]] = defaultdict(list)
    for question, score in scored:
        by_section[str(question["title"])].append(float(score))
    answer_rows = [answers.get(q["id"], {}) for q in questions]
    answered = [q for q, row in zip(questions, answer_rows) if row.get("status") == "ok"]
    judge_rows = [judgements.get(q["id"], {}) for q in answered]
    failed_judgements = [row for row in judge_rows if row and row_call_failed(row)]
    causes = [row.get("cause") for row in answer_rows if row.get("status") == "failed"] + \
        [row.get("cause") for row in failed_judgements]
    return {
        "questions": len(questions),
        "answered": len(answered),
        "answer_failures": sum(1 for row in answer_rows if row.get("status") == "failed"),
        "judge_failures": len(failed_judgements),
        "failure_causes": failure_counts(causes),
        "failure_note": recorded_failures_note(causes, total=len(questions) + len(answered)),
        "truncated_answers": sum(1 for row in answer_rows if row.get("truncated")),
        "parse_failures": sum(1 for row in judge_rows
                              if row.get("status") == "parse_failure" and not row_call_failed(row)),
        "score": bootstrap_mean([s for _, s in scored]).to_dict() if scored else {"mean": None, "n": 0},
        "by_section": {title: {"mean": sum(v) / len(v), "n": len(v)} for title, v in sorted(by_section.items())},
        "score_counts": {str(k): sum(1 for _, s in scored if s == k) for k in range(1, 11)},
        "note": SATURATION_NOTE,
    }


def plot_scores(summary: dict[str, Any], path: Path, *, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from msmkit.io import atomic_write_bytes

    counts = summary["score_counts"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(range(1, 11), [counts[str(k)] for k in range(1, 11)], color="#2b6cb0")
    ax.set_xticks(range(1, 11))
    ax.set_xlabel("adherence score (judge, 1-10)")
    ax.set_ylabel("answers")
    score = summary["score"]
    mean = "n/a" if score["mean"] is None else f"{score['mean']:.2f} [{score['low']:.2f}, {score['high']:.2f}]"
    ax.set_title(f"{title}\nmean {mean}, n={score['n']}, parse failures={summary['parse_failures']}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.stem + ".tmp.png")
    fig.savefig(temporary, dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, temporary.read_bytes())
    temporary.unlink()
    return path


def run_open_qa(config: OpenQAConfig, out: str | Path) -> dict[str, Any]:
    """Questions (generated or given) -> answers -> judgements -> summary.json and scores.png under <out>/open_qa."""
    run = RunDir(out)
    run.write_config(config, f"{STAGE}/config.yaml")
    run.record_prompts(prompt_hashes(PROMPTS))
    stage = run.stage_dir(STAGE)
    sections = {s["index"]: s["text"] for s in spec_sections(config)}
    from msmkit.spec.load import load_spec

    whole_spec = load_spec(config.spec, model_name=config.model_name, provider_name=config.provider_name,
                           warn=False).text

    def section_text(index: Any) -> str:
        return sections.get(index, whole_spec) if isinstance(index, int) else whole_spec

    async def main() -> dict[str, Any]:
        generator = LLMClient(config.generator, run=run, stage=f"{STAGE}/questions")
        model = LLMClient(config.model, run=run, stage=f"{STAGE}/answers")
        judge = LLMClient(config.judge, run=run, stage=f"{STAGE}/judge")
        try:
            failures: list[str] = []
            if config.questions_file:
                questions = load_questions(config.questions_file)
            else:
                questions, failures = await generate_questions(config, generator)
            atomic_write_jsonl(stage / OpenQAOutputs.QUESTIONS, questions)
            answers = await answer_questions(questions, model, config, stage / OpenQAOutputs.ANSWERS)
            judgements = await judge_answers(questions, answers, judge, config, section_text,
                                             stage / OpenQAOutputs.JUDGEMENTS)
        finally:
            for client in (generator, model, judge):
                await client.aclose()
        summary = summarize_open_qa(questions, answers, judgements)
        summary.update(question_generation_failures=failures, model=config.model.describe(),
                       judge=config.judge.describe())
        return summary

    summary = asyncio.run(main())
    run.write_json(f"{STAGE}/summary.json", summary)
    plot_scores(summary, stage / OpenQAOutputs.PLOT, title=f"Open questions on the spec: {config.model.describe()}")
    run.log(f"open_qa: mean {summary['score'].get('mean')} (n={summary['score']['n']}), "
            f"parse failures {summary['parse_failures']}" + (f"; {summary['failure_note']}" if summary['failure_note']
                                                           else ""))
    return summary
