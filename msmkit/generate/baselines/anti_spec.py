"""Anti-spec baseline: invert the spec's values with the LLM, save the inverted spec for inspection,
then generate AFT data from it exactly as for the real spec.

The inverted spec is written once to `<out>/anti_spec.md` (with a `.json` sidecar saying how it was
made); a rerun reuses that file, so the inversion is neither paid for twice nor silently changed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from msmkit.generate.aft.config import AftDataConfig
from msmkit.generate.aft.pipeline import AftResult, Report, generate_aft
from msmkit.llm.client import LLMClient
from msmkit.llm.types import LLMConfig
from msmkit.runs import RunDir
from msmkit.spec import load_spec
from msmkit.spec.variants import VariantKind, make_llm_variant, write_variant

ANTI_SPEC_FILE = "anti_spec.md"


async def write_anti_spec(spec_path: str | Path, llm: LLMConfig, out_dir: str | Path) -> Path:
    """The inverted spec at `<out_dir>/anti_spec.md`, generated on first use."""
    target = Path(out_dir) / ANTI_SPEC_FILE
    if target.exists():
        return target
    spec = load_spec(spec_path, warn=False)  # raw placeholders stay; the AFT run fills them
    run = RunDir(out_dir)
    async with LLMClient(llm, run=run, stage="anti_spec/invert") as client:
        variant = await make_llm_variant(spec, VariantKind.INVERTED, client)
    run.save_usage()
    return write_variant(variant, target)


def generate_anti_spec(spec_path: str | Path, config: AftDataConfig, out_dir: str | Path, *,
                       inverter: LLMConfig | None = None, report: Report | None = None) -> AftResult:
    """Invert with `inverter` (default: the generator), then AFT data from the inverted spec."""
    say = report or (lambda message: None)
    anti = asyncio.run(write_anti_spec(spec_path, inverter or config.generator, out_dir))
    say(f"inverted spec: {anti} (read it before training on this data)")
    return generate_aft(anti, config, out_dir, report=report,
                        extra_stats={"baseline": "anti_spec", "source_spec": str(spec_path), "anti_spec": str(anti)})
