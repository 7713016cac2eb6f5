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

Reported per pipeline: generation wall time (stats elapsed_s: the pipeline, without writing outputs), the
ideal, their ratio (target for the flow: <= 1.15), calls, the most requests the server saw in flight, the
pipeline process's CPU time, and the load average.
"""

from __future__ import annotations

import argparse
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

def run_pipeline(config_path: Path, spec: str, out: Path) -> None:
    """Child process: one corpus run with the msmkit found first on sys.path; prints its figures as JSON."""
    import asyncio

    import datasets  # noqa: F401  (imported up front: start-up cost, not pipeline work)
    import matplotlib.pyplot  # noqa: F401

    import msmkit
    import msmkit.llm.openai_backend  # noqa: F401
    from msmkit.generate.corpus import CorpusConfig, generate_corpus_async

    config = CorpusConfig.model_validate_json(config_path.read_text(encoding="utf-8"))
    cpu, wall = time.process_time(), time.perf_counter()
    result = asyncio.run(generate_corpus_async(spec, config, out))
    stats = result.stats or {}
    print(json.dumps({"msmkit": str(Path(msmkit.__file__).parent), "generation_s": stats["elapsed_s"],
                      "total_s": round(time.perf_counter() - wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
                      "kept": stats["documents"]["kept"], "drops": stats["drops"],
                      "stage_seconds": stats["stage_seconds"]}))


# -- the ideal ------------------------------------------------------------------------------------

def ideal(calls: list[dict[str, Any]], concurrency: int, documents_total: bool) -> dict[str, float]:
    """Critical path and per-client release-time bounds (see the module docstring)."""
    finish: list[float] = [0.0] * len(calls)
    ready: list[float] = [0.0] * len(calls)
    made_by: dict[str, int] = {}  # a domain, subdomain, type or idea name -> the call whose answer named it
    assertion_calls: dict[str, list[int]] = defaultdict(list)  # subdomain name -> its assertion calls
    documents_of: dict[str, list[int]] = defaultdict(list)  # idea title -> its document calls
    order = {"domains": 0, "subdomains": 1, "assertions": 2, "doc_types": 2, "ideas": 3, "documents": 4, "judge": 5}
    indexed = sorted(range(len(calls)), key=lambda i: order.get(calls[i]["stage"], 9))

    def after(*parents: int | None) -> float:
        return max((finish[p] for p in parents if p is not None), default=0.0)

    def produce(i: int, pattern: re.Pattern[str]) -> None:
        for name in pattern.findall(calls[i]["reply"]):
            made_by.setdefault(name, i)

    for i in indexed:
        call, stage = calls[i], calls[i]["stage"]
        prompt = call["prompt"]
        if stage == "domains":
            produce(i, _DOMAIN)
        elif stage == "subdomains":
            ready[i] = after(*(made_by.get(d) for d in _DOMAIN.findall(prompt)))
            produce(i, _SUBDOMAIN)
        elif stage in ("assertions", "doc_types"):
            subs = _SUBDOMAIN.findall(prompt)
            ready[i] = after(*(made_by.get(s) for s in subs))
            if stage == "assertions":
                for sub in subs:
                    assertion_calls[sub].append(i)
            else:
                produce(i, _TYPE)
        elif stage == "ideas":
            types, subs = _TYPE.findall(prompt), _SUBDOMAIN.findall(prompt)
            parents = [made_by.get(t) for t in types] + [a for s in subs for a in assertion_calls[s]]
            if documents_total:
                parents += [j for j, other in enumerate(calls) if other["stage"] == "subdomains"]
            ready[i] = after(*parents)
            produce(i, _IDEA)
        elif stage == "documents":
            title = prompt.split("Idea: ", 1)[1].splitlines()[0] if "Idea: " in prompt else ""
            ready[i] = after(made_by.get(title), *documents_of[title])  # a retry follows the first answer
            documents_of[title].append(i)
        elif stage == "judge":
            titles = [t for t in _IDEA.findall(prompt)[:1]]
            ready[i] = after(*(d for t in titles for d in documents_of[t]))
        finish[i] = ready[i] + call["latency"]

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
    return {**{k: round(v, 3) for k, v in bounds.items()}, "ideal_s": round(max(bounds.values()), 3)}


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
        child = subprocess.run([sys.executable, __file__, "--run", str(config), "--spec", args.spec, "--out",
                                str(scratch / f"{label}-run")], env=env, capture_output=True, text=True, cwd=code)
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
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency, args.sigma, Path(args.record))
        return
    if args.run:
        run_pipeline(Path(args.run), args.spec, Path(args.out))
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
                          f"CPU {result['cpu_s']} s; load {result['load_average_before']}", flush=True)
        finally:
            if waves is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(waves)], check=False)


if __name__ == "__main__":
    main()
