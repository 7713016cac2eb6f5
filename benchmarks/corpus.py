"""Corpus pipeline throughput under heavy-tailed latencies: today's item-by-item flow against the old waves.

    .venv/bin/python benchmarks/corpus.py [--documents 1000] [--latency 0.2] [--sigma 1.0] [--concurrency 64]
        [--no-judge] [--baseline REV | --no-baseline] [--repeat 1]

The test server runs in its own process and answers every corpus prompt with scripted, distinct answers
(tests/corpus_script.py). Its latency is lognormal with mean --latency and log-sd --sigma, fixed per request,
so both pipelines wait exactly as long for the same request. Each pipeline runs in its own process against
its own fresh server: first this checkout's, then the wave pipeline of --baseline (default: the last commit
before the flow), checked out in a temporary `git worktree` and imported from there.

The ideal is a lower bound on any schedule of the calls the run made, worked out from the server's record
of every request (what it asked, what it answered, how long it waited):
- the critical path: each call starts when the calls it needs are answered (a subdomain's characterisation
  needs its domain's subdomain list; a cell's ideas need its subdomain's assertions and document types and,
  with a document total, every subdomain list, since the total is spread over them; a document needs its
  idea; a judge call needs its document and retry), with unlimited concurrency;
- per client (generator, judge: each has --concurrency slots), max over t of t + (latency of the calls
  that cannot start before t) / concurrency.
Replacement ideas are counted as work but get no edge to the document they replace (a looser bound).
Also reported: the greedy schedule, the makespan of the same calls and dependencies run with --concurrency
slots per client, upstream steps first (the flow's own policy), with no client or server CPU time. It is
what a flawless item-by-item pipeline reaches without knowing latencies in advance; the lower bounds above
assume the long calls could be started first.

Reported per pipeline: generation wall time (stats elapsed_s: the pipeline, without writing outputs), the
ideal, their ratio (target for the flow: <= 1.15), calls, the most requests the server saw in flight, the
pipeline process's CPU time, and the load average.

Measured on the 2-core development machine, idle (load average 0.35-0.54), 1,000 documents, judge on,
concurrency 64, sigma 1, one run each:
- mean 1.0 s: flow 26.98 s, waves 67.1 s; greedy schedule 26.62 s (flow 1.013x of it, waves 2.55x); lower bound
  18.04 s (flow 1.50x, waves 3.72x).
- mean 0.2 s: flow 6.71 s, waves 14.68 s; greedy schedule 5.27 s (flow 1.27x); lower bound 3.61 s (flow 1.86x).
  The flow is CPU-bound here: 5.6 s of client CPU in 6.7 s for 2,200 calls (the SDK and HTTP with 12 KB prompts).
  Three later runs (--no-baseline): 5.90-6.59 s, 1.12-1.25x of the greedy schedule, with 4.2-5.8 s of CPU from one
  run to the next. `--profile FILE` showed where that CPU goes: the SDK's request building and its aiohttp
  transport take most of it; msmkit's own largest parts are near-duplicate signatures (about 0.4 ms a document)
  and the length filter.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "paper_specs" / "pro_america_cheese.txt"
WAVES_COMMIT = "1f6611f"  # the last commit whose corpus pipeline ran in waves

DOMAINS, SUBDOMAINS_PER_DOMAIN, DOC_TYPES = 5, 4, 5
_DOMAIN = re.compile(r"Domain \d+-\d+")
_SUBDOMAIN = re.compile(r"Subdomain \d+-\d+")
_TYPE = re.compile(r"Type \d+-\d+")
_IDEA = re.compile(r"Idea \d+-\d+")


# -- the server child -----------------------------------------------------------------------------

def serve(latency: float, sigma: float, record: Path) -> None:
    """Child process: the scripted corpus server; on SIGTERM it writes what it answered to `record`."""
    import signal
    import threading

    sys.path.insert(0, str(ROOT))
    from msmkit.testing import FakeLLMServer, ScriptedRequest
    from tests.corpus_script import CorpusScript

    script = CorpusScript(doc_words=400)
    calls: list[dict[str, Any]] = []
    lock = threading.Lock()
    server: FakeLLMServer

    def responder(request: ScriptedRequest) -> Any:
        reply = script(request)
        entry = {"stage": script.stage_of(request), "latency": server.latency_for(request), "answered": time.time(),
                 "prompt": request.last_user, "reply": getattr(reply, "text", reply)}
        with lock:
            calls.append(entry)
        return reply

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server = FakeLLMServer(responder, latency_s=latency, latency_sigma=sigma)
    with server:
        print(f"READY {server.openai_base_url}", flush=True)
        done.wait()
        stats = server.stats.to_json()
    record.write_text(json.dumps({"calls": calls, "max_in_flight": stats["max_in_flight"]}), encoding="utf-8")


# -- the pipeline child ---------------------------------------------------------------------------

def run_pipeline(config_path: Path, spec: str, out: Path, profile: Path | None = None) -> None:
    """Child process: one corpus run with the msmkit found first on sys.path; prints its figures as JSON.
    `profile`: also write a cProfile of the run there (read it with `python -m pstats`)."""
    import asyncio
    import cProfile

    import datasets  # noqa: F401  (imported up front: start-up cost, not pipeline work)
    import matplotlib.pyplot  # noqa: F401

    import msmkit
    import msmkit.llm.openai_backend  # noqa: F401
    from msmkit.generate.corpus import CorpusConfig, generate_corpus_async

    data = json.loads(config_path.read_text(encoding="utf-8"))
    if "audit" in CorpusConfig.model_fields:  # the integrity audit is output writing, not generation: off
        data["audit"] = {"enabled": False}
    config = CorpusConfig.model_validate(data)
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = asyncio.run(generate_corpus_async(spec, config, out))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    stats = result.stats or {}
    print(json.dumps({"msmkit": str(Path(msmkit.__file__).parent), "generation_s": stats["elapsed_s"],
                      "total_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
                      "kept": stats["documents"]["kept"], "drops": stats["drops"],
                      "stage_seconds": stats["stage_seconds"]}))


# -- the ideal ------------------------------------------------------------------------------------

def dependencies(calls: list[dict[str, Any]], documents_total: bool) -> list[list[int]]:
    """For each call, the calls whose answers it needs (see the module docstring), found through the names the
    scripted answers give (domains, subdomains, document types, ideas) and the prompts that mention them."""
    parents: list[list[int]] = [[] for _ in calls]
    made_by: dict[str, int] = {}  # a domain, subdomain, type or idea name -> the call whose answer named it
    assertion_calls: dict[str, list[int]] = defaultdict(list)  # subdomain name -> its assertion calls
    documents_of: dict[str, list[int]] = defaultdict(list)  # idea title -> its document calls
    subdomain_calls = [i for i, call in enumerate(calls) if call["stage"] == "subdomains"]
    order = {"domains": 0, "subdomains": 1, "assertions": 2, "doc_types": 2, "ideas": 3, "documents": 4, "judge": 5}

    def named(names: list[str]) -> list[int]:
        return [made_by[name] for name in names if name in made_by]

    for i in sorted(range(len(calls)), key=lambda i: order.get(calls[i]["stage"], 9)):
        stage, prompt, reply = calls[i]["stage"], calls[i]["prompt"], calls[i]["reply"]
        produced: re.Pattern[str] | None = None
        if stage == "domains":
            produced = _DOMAIN
        elif stage == "subdomains":
            parents[i], produced = named(_DOMAIN.findall(prompt)), _SUBDOMAIN
        elif stage in ("assertions", "doc_types"):
            subs = _SUBDOMAIN.findall(prompt)
            parents[i] = named(subs)
            if stage == "assertions":
                for sub in subs:
                    assertion_calls[sub].append(i)
            else:
                produced = _TYPE
        elif stage == "ideas":
            subs = _SUBDOMAIN.findall(prompt)
            parents[i] = named(_TYPE.findall(prompt)) + [a for sub in subs for a in assertion_calls[sub]]
            parents[i] += subdomain_calls if documents_total else []
            produced = _IDEA
        elif stage == "documents":
            title = prompt.split("Idea: ", 1)[1].splitlines()[0] if "Idea: " in prompt else ""
            parents[i] = named([title]) + documents_of[title]  # a retry follows the first answer
            documents_of[title].append(i)
        elif stage == "judge":
            parents[i] = [d for t in _IDEA.findall(prompt)[:1] for d in documents_of[t]]
        for name in (produced.findall(reply) if produced else []):
            made_by.setdefault(name, i)
    return parents


def ideal(calls: list[dict[str, Any]], concurrency: int, documents_total: bool) -> dict[str, float]:
    """Lower bounds (critical path; per-client release-time work bound) and the greedy schedule: the same calls
    and dependencies with `concurrency` slots per client, upstream steps first, no client or server CPU."""
    parents = dependencies(calls, documents_total)
    order = sorted(range(len(calls)), key=lambda i: calls[i]["stage"] != "domains")  # parents come first below
    finish = [0.0] * len(calls)
    ready = [0.0] * len(calls)
    pending = set(range(len(calls)))
    while pending:  # topological: calls whose parents are done
        for i in [i for i in order if i in pending and all(p not in pending for p in parents[i])]:
            ready[i] = max((finish[p] for p in parents[i]), default=0.0)
            finish[i] = ready[i] + calls[i]["latency"]
            pending.discard(i)

    def release_bound(indices: list[int]) -> float:
        best, remaining = 0.0, sum(calls[i]["latency"] for i in indices)
        for i in sorted(indices, key=lambda i: ready[i]):
            best = max(best, ready[i] + remaining / concurrency)
            remaining -= calls[i]["latency"]
        return best

    generator = [i for i, call in enumerate(calls) if call["stage"] != "judge"]
    judge = [i for i, call in enumerate(calls) if call["stage"] == "judge"]
    bounds = {"critical_path_s": max(finish, default=0.0), "generator_work_s": release_bound(generator),
              "judge_work_s": release_bound(judge)}
    return {**{k: round(v, 3) for k, v in bounds.items()}, "ideal_s": round(max(bounds.values()), 3),
            "greedy_schedule_s": round(greedy_schedule(calls, parents, concurrency), 3)}


def greedy_schedule(calls: list[dict[str, Any]], parents: list[list[int]], concurrency: int) -> float:
    """Makespan of list scheduling: a call starts when its parents are answered and a slot of its client is free,
    lowest step rank first, then first ready (what the flow does, without its CPU time)."""
    rank = {"domains": 0, "subdomains": 1, "assertions": 2, "doc_types": 2, "ideas": 3, "documents": 4, "judge": 5}
    children: list[list[int]] = [[] for _ in calls]
    waiting = [len(p) for p in parents]
    for i, ps in enumerate(parents):
        for p in ps:
            children[p].append(i)
    free = {"generator": concurrency, "judge": concurrency}
    queues: dict[str, list[tuple[int, float, int]]] = {"generator": [], "judge": []}
    running: list[tuple[float, int]] = []
    now = 0.0

    def pool(i: int) -> str:
        return "judge" if calls[i]["stage"] == "judge" else "generator"

    for i in range(len(calls)):
        if waiting[i] == 0:
            heapq.heappush(queues[pool(i)], (rank.get(calls[i]["stage"], 9), 0.0, i))
    while True:
        for name, queue in queues.items():
            while queue and free[name] > 0:
                _, _, i = heapq.heappop(queue)
                free[name] -= 1
                heapq.heappush(running, (now + calls[i]["latency"], i))
        if not running:
            return now
        now, i = heapq.heappop(running)
        free[pool(i)] += 1
        for child in children[i]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(queues[pool(child)], (rank.get(calls[child]["stage"], 9), now, child))


# -- the parent -----------------------------------------------------------------------------------

def corpus_config(base_url: str, cache: str, args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.corpus_script import config_dict

    data = config_dict(base_url, cache,
                       counts={"domains": DOMAINS, "subdomains_per_domain": SUBDOMAINS_PER_DOMAIN,
                               "assertions_per_subdomain": 6, "doc_types_per_subdomain": DOC_TYPES,
                               "documents": args.documents},
                       lengths={"min_words": 50, "max_words": 2000, "target_words": 400, "document_max_tokens": 2048})
    data["generator"].update(concurrency=args.concurrency, max_retries=2, timeout_s=120)
    if args.judge:
        data["judge"] = dict(data["generator"])
    return data


def one_run(label: str, code: Path, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    record = scratch / f"{label}-server.json"
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--latency", str(args.latency), "--sigma",
                               str(args.sigma), "--record", str(record)], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().strip()  # type: ignore[union-attr]
        if not line.startswith("READY "):
            raise RuntimeError(f"the test server did not start: {line!r}")
        config = scratch / f"{label}-config.json"
        config.write_text(json.dumps(corpus_config(line.split(" ", 1)[1], str(scratch / f"{label}.sqlite"), args)))
        env = {**os.environ, "PYTHONPATH": str(code), "MSM_NO_PROGRESS": "1", "OPENAI_API_KEY": "sk-benchmark"}
        load = os.getloadavg()[0]
        command = [sys.executable, __file__, "--run", str(config), "--spec", args.spec, "--out",
                   str(scratch / f"{label}-run")]
        if args.profile and label.startswith("flow"):
            command += ["--profile", args.profile]
        child = subprocess.run(command, env=env, capture_output=True, text=True, cwd=code)
        if child.returncode != 0:
            raise RuntimeError(f"{label} pipeline failed:\n{child.stderr[-4000:]}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(timeout=60)
    served = json.loads(record.read_text(encoding="utf-8"))
    bound = ideal(served["calls"], args.concurrency, documents_total=True)
    calls: dict[str, int] = defaultdict(int)
    for call in served["calls"]:
        calls[call["stage"]] += 1
    return {"pipeline": label, **figures, **bound, "ratio": round(figures["generation_s"] / bound["ideal_s"], 3),
            "ratio_to_greedy": round(figures["generation_s"] / bound["greedy_schedule_s"], 3),
            "calls": dict(calls), "server_max_in_flight": served["max_in_flight"],
            "load_average_before": round(load, 2), "load_average_after": round(os.getloadavg()[0], 2)}


def baseline_worktree(rev: str, scratch: Path) -> Path:
    path = scratch / "waves"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), rev], check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2, help="mean seconds per call")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal log-sd (0: every call takes --latency)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-judge", dest="judge", action="store_false")
    parser.add_argument("--baseline", default=WAVES_COMMIT, help="commit of the wave pipeline to compare against")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--spec", default=str(SPEC))
    parser.add_argument("--profile", help="write a cProfile of the flow's pipeline process to this file (slows it)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency, args.sigma, Path(args.record))
        return
    if args.run:
        run_pipeline(Path(args.run), args.spec, Path(args.out), Path(args.profile) if args.profile else None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        waves = None if args.no_baseline else baseline_worktree(args.baseline, scratch)
        try:
            for repeat in range(args.repeat):
                for label, code in [("flow", ROOT)] + ([] if waves is None else [(f"waves@{args.baseline}", waves)]):
                    result = one_run(f"{label.split('@')[0]}-{repeat}", code, args, scratch)
                    result["pipeline"] = label
                    print(json.dumps(result), flush=True)
                    print(f"{label}: {result['kept']} documents in {result['generation_s']} s; ideal "
                          f"{result['ideal_s']} s (critical path {result['critical_path_s']}, generator "
                          f"{result['generator_work_s']}, judge {result['judge_work_s']}) = {result['ratio']}x; "
                          f"greedy schedule {result['greedy_schedule_s']} s = {result['ratio_to_greedy']}x; "
                          f"CPU {result['cpu_s']} s; load {result['load_average_before']}", flush=True)
        finally:
            if waves is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(waves)], check=False)


if __name__ == "__main__":
    main()
