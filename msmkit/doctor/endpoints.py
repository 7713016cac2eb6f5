"""`msm doctor --config`: find every LLM a config names, then check each one is reachable and serves the model.

Any YAML msmkit reads works (experiment, corpus, AFT, neutral, agentic, judge/model files): every mapping with
a `provider` key is an LLM section, and agentic-eval sections name Inspect models (`anthropic/...`,
`openai/...`, `openai-api/<service>/...`) for the evaluated model and the grader. API keys are checked by the
NAME of their variable; their values are never printed.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from msmkit.doctor.check import Check
from msmkit.errors import MsmError

DEFAULT_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
KNOWN_KEY_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "HF_TOKEN")


@dataclass(frozen=True)
class Endpoint:
    where: str  # file and section, e.g. "corpus.yaml: judge"
    provider: str  # anthropic | openai | openai_compatible | local
    model: str
    base_url: str | None = None
    key_env: str | None = None  # the variable that holds the key
    key_required: bool = False

    def describe(self) -> str:
        return f"{self.provider}:{self.model}" + (f" @ {self.base_url}" if self.base_url else "")


@dataclass
class ConfigScan:
    endpoints: list[Endpoint]
    problems: list[Check]  # sections that cannot be read as LLM settings
    agentic: bool  # the config runs agentic evals (they need inspect-ai and inspect-evals)


def scan_config(path: Path) -> ConfigScan:
    """Every LLM endpoint named in the YAML file at `path`."""
    from msmkit.config import load_yaml

    scan = ConfigScan([], [], False)
    data = load_yaml(path)
    if isinstance(data, dict) and _is_agentic_section(data) and "provider" not in data:
        _agentic(data, (), path, scan)
    else:
        _walk(data, (), path, scan)
    return scan


def _is_agentic_section(data: dict[str, Any]) -> bool:
    return any(key in data for key in ("grader", "scenarios", "grid", "goal_types", "epochs"))


def _label(path: Path, location: tuple[str, ...]) -> str:
    dotted = "".join(part if part.startswith("[") else f".{part}" for part in location).lstrip(".")
    return f"{path.name}: {dotted or '(top level)'}"


def _walk(node: Any, location: tuple[str, ...], path: Path, scan: ConfigScan) -> None:
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, (*location, f"[{index}]"), path, scan)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("provider"), str):
        _llm_section(node, location, path, scan)
        return
    if node.get("suite") == "agentic":
        _agentic(node.get("agentic") or {}, (*location, "agentic"), path, scan)
    for key, value in node.items():
        if key == "agentic" and node.get("suite") == "agentic":
            continue
        if key == "agentic" and isinstance(value, dict):
            _agentic(value, (*location, key), path, scan)
            continue
        _walk(value, (*location, str(key)), path, scan)


def _llm_section(node: dict[str, Any], location: tuple[str, ...], path: Path, scan: ConfigScan) -> None:
    from msmkit.config import validate_config
    from msmkit.llm.types import LLMConfig

    where = _label(path, location)
    try:
        config = validate_config(node, LLMConfig, where)
    except MsmError as exc:
        scan.problems.append(Check(where, "fail", str(exc), "fix the section (docs: Reference > Configuration)"))
        return
    key_env = config.api_key_env or DEFAULT_KEY_ENV.get(config.provider)
    scan.endpoints.append(Endpoint(where, config.provider, config.model, config.base_url, key_env,
                                   key_required=config.provider in ("anthropic", "openai")))


def _agentic(section: dict[str, Any], location: tuple[str, ...], path: Path, scan: ConfigScan) -> None:
    from msmkit.eval.agentic.scoring import DEFAULT_GRADER

    scan.agentic = True
    for role in ("model", "grader"):
        reference = section.get(role)
        if reference is None and role == "grader":
            reference = {"model": DEFAULT_GRADER}
        if isinstance(reference, dict) and isinstance(reference.get("model"), str):
            endpoint = _inspect_endpoint(reference, _label(path, (*location, role)))
            if endpoint is not None:
                scan.endpoints.append(endpoint)


def _inspect_endpoint(reference: dict[str, Any], where: str) -> Endpoint | None:
    """The endpoint behind an Inspect model name; None for names msmkit does not check (other providers)."""
    name, base_url, key_env = reference["model"], reference.get("base_url"), reference.get("api_key_env")
    if name == "embedded" or Path(name).is_dir() or "/" not in name and not base_url:
        return Endpoint(where, "local", name)
    provider, _, model = name.partition("/") if "/" in name else ("openai-api", "", f"msm/{name}")
    if provider in DEFAULT_KEY_ENV:
        return Endpoint(where, provider, model, base_url, key_env or DEFAULT_KEY_ENV[provider], key_required=True)
    if provider != "openai-api":
        return None
    service, _, served = model.partition("/")
    variable = service.upper().replace("-", "_")
    return Endpoint(where, "openai_compatible", served, base_url or os.environ.get(f"{variable}_BASE_URL"),
                    key_env or f"{variable}_API_KEY")


def key_checks(endpoints: list[Endpoint]) -> list[Check]:
    """Whether each key variable is set, by name; without endpoints, the usual variables."""
    if not endpoints:
        found = [name for name in KNOWN_KEY_VARIABLES if os.environ.get(name)]
        detail = f"set: {', '.join(found)}" if found else "none of " + ", ".join(KNOWN_KEY_VARIABLES) + " is set"
        return [Check("API keys", "info", detail + " (pass --config to check the ones a config needs)")]
    checks, seen = [], set()
    for endpoint in endpoints:
        if not endpoint.key_env or endpoint.key_env in seen:
            continue
        seen.add(endpoint.key_env)
        if os.environ.get(endpoint.key_env):
            checks.append(Check(f"key {endpoint.key_env}", "ok", f"set (for {endpoint.where})"))
        elif endpoint.key_required:
            checks.append(Check(f"key {endpoint.key_env}", "fail", f"not set; {endpoint.where} needs it",
                                f"export {endpoint.key_env}=... (or name another variable with api_key_env)"))
        else:
            checks.append(Check(f"key {endpoint.key_env}", "info", f"not set; {endpoint.where} sends a placeholder "
                                "key (fine for a server started without --api-key)"))
    return checks


def probe_endpoints(endpoints: list[Endpoint], timeout_s: float) -> list[Check]:
    """One check per endpoint: reachable and the model served (local ones: the weights are on this machine)."""
    async def probe_all() -> list[Check]:
        return list(await asyncio.gather(*(probe(endpoint, timeout_s) for endpoint in endpoints)))

    return asyncio.run(probe_all()) if endpoints else []


async def probe(endpoint: Endpoint, timeout_s: float) -> Check:
    if endpoint.provider == "local":
        return _local_check(endpoint)
    key = os.environ.get(endpoint.key_env) if endpoint.key_env else None
    if endpoint.key_required and not key:
        return Check(endpoint.where, "fail", f"{endpoint.describe()}: not contacted, {endpoint.key_env} is not set",
                     f"export {endpoint.key_env}=...")
    if endpoint.provider == "openai_compatible" and not endpoint.base_url:
        return Check(endpoint.where, "fail", f"{endpoint.describe()}: no base_url",
                     "set base_url, e.g. http://127.0.0.1:8000/v1 for vLLM")
    try:
        served = await _served_models(endpoint, key, timeout_s)
    except Exception as exc:  # every SDK and transport error is reported in plain words
        return Check(endpoint.where, "fail", f"{endpoint.describe()}: {_plain(exc, endpoint)}",
                     _fix_for(exc, endpoint))
    if endpoint.model in served:
        return Check(endpoint.where, "ok", f"{endpoint.describe()}: reachable, model served")
    if endpoint.provider == "anthropic" and await _anthropic_alias(endpoint, key, timeout_s):
        return Check(endpoint.where, "ok", f"{endpoint.describe()}: reachable, model served (alias)")
    listing = ", ".join(served[:8]) + (", ..." if len(served) > 8 else "") if served else "none"
    return Check(endpoint.where, "fail", f"{endpoint.describe()}: reachable, but it does not serve "
                 f"{endpoint.model!r} (it serves: {listing})", "correct `model`, or start the server with this model")


def _sdk(endpoint: Endpoint) -> Any:
    if endpoint.provider == "anthropic":
        import anthropic

        return anthropic
    import openai

    return openai


def _client(endpoint: Endpoint, key: str | None, timeout_s: float) -> Any:
    sdk = _sdk(endpoint)
    if endpoint.provider == "anthropic":
        return sdk.AsyncAnthropic(api_key=key, base_url=endpoint.base_url, timeout=timeout_s, max_retries=0)
    return sdk.AsyncOpenAI(api_key=key or "not-needed", base_url=endpoint.base_url, timeout=timeout_s, max_retries=0)


async def _served_models(endpoint: Endpoint, key: str | None, timeout_s: float) -> list[str]:
    client = _client(endpoint, key, timeout_s)
    try:
        return [model.id async for model in client.models.list()]
    finally:
        await client.close()


async def _anthropic_alias(endpoint: Endpoint, key: str | None, timeout_s: float) -> bool:
    """Anthropic lists dated ids (claude-...-20250929) and accepts aliases; retrieving the name resolves it."""
    client = _client(endpoint, key, timeout_s)
    try:
        await client.models.retrieve(endpoint.model)
        return True
    except Exception:  # 404 or any failure: the listing already answered the question
        return False
    finally:
        await client.close()


def _plain(exc: Exception, endpoint: Endpoint) -> str:
    from msmkit.llm.errors_map import map_sdk_error

    return str(map_sdk_error(exc, _sdk(endpoint)))


def _fix_for(exc: Exception, endpoint: Endpoint) -> str:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return f"check the key in {endpoint.key_env or 'the api_key_env variable'} (and that it belongs to this server)"
    if status == 404:
        return "check base_url (OpenAI-compatible servers usually end in /v1)"
    if status == 429:
        return "wait, or lower concurrency / requests_per_minute in the LLM section"
    return "start the server, or correct base_url; test with `curl BASE_URL/models`"


def _local_check(endpoint: Endpoint) -> Check:
    if endpoint.model == "embedded":
        return Check(endpoint.where, "ok", "local:embedded (the packaged Gemma 3 270M base; see 'embedded model')")
    from msmkit.models.loading import resolve_model_source

    try:
        source = resolve_model_source(endpoint.model)
    except MsmError as exc:
        return Check(endpoint.where, "fail", f"local:{endpoint.model}: {exc}",
                     "point `model` at a model folder on this machine, or fetch it into the Hugging Face cache")
    found = source.base + (f" + adapter {source.adapter}" if source.adapter else "")
    return Check(endpoint.where, "ok", f"local:{endpoint.model}: weights on this machine ({found})")
