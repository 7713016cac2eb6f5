"""`python -m msmkit.testing.server`: the test server in its own process, for tests in other processes.

    python -m msmkit.testing.server --port 0 [--latency 0.1] [--latency-sigma 1.0] [--batch-delay 1.0]
        [--script rules.yaml] [--api-key-env NAME] [--model NAME ...]

prints `READY http://127.0.0.1:PORT` once it listens, then serves until killed. Other processes read
the counters at GET /_stats and inject faults with POST /_inject {"fault": "rate_limit", "times": 1,
"retry_after": 0.2, "match": "regex", "status": 529}; POST /_reset zeroes the counters.
FakeServerProcess (msmkit.testing.process) wraps all of this.
"""

from __future__ import annotations

import argparse
import os
import sys

from msmkit.errors import MsmError
from msmkit.testing.fake_server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m msmkit.testing.server",
                                     description="Fake OpenAI/Anthropic server for tests and offline dry runs.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation request")
    parser.add_argument("--latency-sigma", type=float, default=0.0,
                        help="lognormal latencies with this sigma and mean --latency (the same for the same request)")
    parser.add_argument("--batch-delay", type=float, default=1.0, help="seconds a batch stays in progress")
    parser.add_argument("--script", help="YAML rules file (see msmkit.testing.responders)")
    parser.add_argument("--api-key-env", help="answer 401 unless requests present the key in this environment "
                                              "variable (the variable's name, so the key stays off the command line)")
    parser.add_argument("--model", action="append", dest="models",
                        help="a model name to serve (repeatable); others get 404 model-not-found")
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(f"error: --api-key-env {args.api_key_env}: that environment variable is not set", file=sys.stderr)
            sys.exit(2)
    try:
        serve_forever(args.port, args.latency, args.batch_delay, args.script, api_key=api_key,
                      served_models=args.models, latency_sigma=args.latency_sigma)
    except MsmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
