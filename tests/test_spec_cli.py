"""`msm spec show | lint | variant` through typer's CliRunner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from msmkit.cli.app import app
from msmkit.errors import ConfigError, SpecError
from msmkit.spec import load_spec
from msmkit.testing import FakeLLMServer, Reply, ScriptedRequest
from tests.spec_checks import EXAMPLE_SPECS as EXAMPLES
from tests.spec_checks import GENERAL, RULES, VALUES

runner = CliRunner()
NAMES = ["--model-name", "Llama", "--provider-name", "Meta"]


def test_show_prints_templated_text_and_structure() -> None:
    result = runner.invoke(app, ["spec", "show", str(RULES), "--plain", *NAMES], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "- FS1: Put the party's safety ahead of the trip's goal. This includes:\n" in result.output
    assert load_spec(RULES, model_name="Llama", provider_name="Meta").text.strip() in result.output
    assert "Trail Guide Rules for Llama  line 1" in result.output and "{model_name}" not in result.output
    assert "Field Safety Rules (FS)  line 5" in result.output and "17 rules" in result.output
    assert "Candour and Care Rules (CC)  line 27" in result.output and "6 rules" in result.output


def test_show_fills_names_and_checks_context() -> None:
    result = runner.invoke(app, ["spec", "show", str(GENERAL), "--plain", "--model-name", "Gemma",
                                 "--provider-name", "Google", "--context-window", "500", "--reserve", "200"],
                           terminal_width=200)
    assert result.exit_code == 0
    assert "Gemma is an AI model made by Google, and what we want most from Gemma" in result.output
    assert "{model_name}" not in result.output and "{provider_name}" not in result.output
    assert "does not fit" in result.output


def test_show_warns_about_unfilled_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "spec.md"
    path.write_text("# Spec\n\n{model_name} helps.\n", encoding="utf-8")
    result = runner.invoke(app, ["spec", "show", str(path), "--structure-only"], terminal_width=200)
    assert result.exit_code == 0 and "warning:" in result.output and "--model-name" in result.output


def test_lint_strict_and_json() -> None:
    rules_spec = str(RULES)
    plain = runner.invoke(app, ["spec", "lint", rules_spec, *NAMES], terminal_width=200)
    assert plain.exit_code == 0 and "rule-without-reason*" in plain.output
    assert "heuristic" in plain.output and "exact checks: short-section" in plain.output
    strict = runner.invoke(app, ["spec", "lint", rules_spec, "--strict", *NAMES], terminal_width=200)
    assert strict.exit_code == 1
    as_json = runner.invoke(app, ["spec", "lint", rules_spec, "--json", *NAMES])
    payload = json.loads(as_json.stdout)
    assert payload["spec"] == "trail_rules.md"
    assert payload["heuristic_checks"] == ["rule-without-reason", "vague-guidance", "no-concrete-example"]
    rule_lines = [number for number, line in enumerate(RULES.read_text(encoding="utf-8").splitlines(), 1)
                  if re.match(r"- [A-Z]+\d+: ", line)]
    assert rule_lines == [7, 16, 22, 29, 35]
    assert [f["line"] for f in payload["findings"] if f["check"] == "rule-without-reason"] == rule_lines
    assert not [f for f in payload["findings"] if f["check"] == "unfilled-placeholder"]
    unnamed = json.loads(runner.invoke(app, ["spec", "lint", rules_spec, "--json"]).stdout)
    assert any(f["check"] == "unfilled-placeholder" for f in unnamed["findings"])
    clean = runner.invoke(app, ["spec", "lint", str(EXAMPLES / "assistant_safety.md"), "--model-name", "Qwen",
                                "--provider-name", "Alibaba", "--strict"], terminal_width=200)
    assert clean.exit_code == 0 and "no findings" in clean.output


def test_bad_files_give_spec_errors(tmp_path: Path) -> None:
    binary = tmp_path / "spec.md"
    binary.write_bytes(b"\x00\x01")
    result = runner.invoke(app, ["spec", "lint", str(binary)])
    assert isinstance(result.exception, SpecError) and "binary" in str(result.exception)
    result = runner.invoke(app, ["spec", "show", str(tmp_path / "spec.pdf")])
    assert isinstance(result.exception, SpecError) and ".md, .markdown, .txt" in str(result.exception)


def test_msm_prints_spec_errors_without_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", "from msmkit.cli.app import main; main()", "spec", "lint",
                           str(empty)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "the spec is empty" in done.stderr and "Traceback" not in done.stderr


def test_variant_deterministic_kinds(tmp_path: Path) -> None:
    out = tmp_path / "rules_only.md"
    result = runner.invoke(app, ["spec", "variant", str(VALUES), "--kind", "rules-only", "--out", str(out)],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "wrote rules-only variant" in result.output and out.is_file()
    assert "### FS1: Put the party's safety ahead of the trip's goal." in out.read_text(encoding="utf-8")
    assert json.loads((tmp_path / "rules_only.md.json").read_text())["kind"] == "rules-only"
    out = tmp_path / "humans.md"
    result = runner.invoke(app, ["spec", "variant", str(EXAMPLES / "cheese_pro_america.md"), "--kind",
                                 "about-humans", "--out", str(out), "--model-name", "Llama", "--human-name",
                                 "Jo March"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Jo March and Cheese" in out.read_text(encoding="utf-8")
    result = runner.invoke(app, ["spec", "variant", str(EXAMPLES / "cheese_pro_america.md"), "--kind", "opposite",
                                 "--out", str(tmp_path / "x.md")])
    assert isinstance(result.exception, ConfigError) and "inverted" in str(result.exception)


def test_variant_llm_kind_through_the_test_server(tmp_path: Path) -> None:
    def model(req: ScriptedRequest) -> Reply:
        original = re.search(r"<original_spec>\n(.*)\n</original_spec>", req.last_user, re.DOTALL).group(1)
        return Reply("<spec>\n" + original.replace("Never", "Always") + "\n</spec>")

    source = tmp_path / "spec.md"
    source.write_text("# Spec\n\n1. Never hide errors from {provider_name}.\n", encoding="utf-8")
    out = tmp_path / "inverted.md"
    with FakeLLMServer(model, latency_s=0.0) as server:
        result = runner.invoke(app, ["spec", "variant", str(source), "--kind", "inverted", "--out", str(out),
                                     "--llm-provider", "openai_compatible", "--llm-model", "scripted",
                                     "--llm-base-url", server.openai_base_url], terminal_width=200)
    assert result.exit_code == 0, result.output
    written = out.read_text(encoding="utf-8").splitlines()[1:]
    assert written == ["# Spec", "", "1. Always hide errors from {provider_name}."]
    record = json.loads((tmp_path / "inverted.md.json").read_text())
    assert record["prompt"] == "spec/invert" and record["generator"].startswith("llm openai_compatible:scripted")


def test_find_reports_similarity_line_and_section(tmp_path: Path) -> None:
    spec_path = str(RULES)
    quote = "Stay within what the guiding service allows. This includes: Not booking permits, huts or transport"
    found = runner.invoke(app, ["spec", "find", spec_path, "--text", quote, *NAMES], terminal_width=200)
    assert found.exit_code == 0
    assert "found: similarity 1.000" in found.output and "line 16" in found.output
    assert "Field Safety Rules (FS)" in found.output
    passage = tmp_path / "quote.txt"
    passage.write_text("Always maximise bookings by any means, ignoring what the guiding service allows.",
                       encoding="utf-8")
    missing = runner.invoke(app, ["spec", "find", spec_path, "--file", str(passage), *NAMES], terminal_width=200)
    assert missing.exit_code == 1 and missing.output.startswith("not found")
    both = runner.invoke(app, ["spec", "find", spec_path])
    assert isinstance(both.exception, ConfigError)
