"""`msm llm ...`: LLM utilities. `serve-fake` runs the offline OpenAI/Anthropic-compatible test server."""

from __future__ import annotations

from pathlib import Path

import typer

llm_app = typer.Typer(help="LLM endpoints: a fake OpenAI/Anthropic server for offline dry runs.", no_args_is_help=True)


@llm_app.command("serve-fake")
def serve_fake(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0 picks a free one)."),
    latency: float = typer.Option(0.0, help="Seconds added to every generation request."),
    batch_delay: float = typer.Option(1.0, help="Seconds a submitted batch stays in progress."),
    script: Path | None = typer.Option(
        None, exists=True, dir_okay=False,
        help="YAML rules: a list of {match: regex, reply: text, stop: end|max_tokens|refusal|stop_sequence, "
             "output_tokens: N}; the first rule whose regex is found in system + messages answers. "
             "Unmatched requests get a deterministic echo."),
) -> None:
    """Serve the OpenAI and Anthropic APIs on 127.0.0.1 with scripted answers until Ctrl-C.

    Point a config at it with `base_url: http://127.0.0.1:PORT/v1` (openai / openai_compatible) or
    `base_url: http://127.0.0.1:PORT` (anthropic) and any API key. Prints `READY <url>` once listening.
    GET /_stats shows request counts; POST /_inject {"fault": "rate_limit", "times": 2} injects faults.
    """
    from msmkit.testing.fake_server import serve_forever

    serve_forever(port, latency, batch_delay, str(script) if script else None,
                  announce=lambda line: typer.echo(line))


def register(app: typer.Typer) -> None:
    app.add_typer(llm_app, name="llm")
