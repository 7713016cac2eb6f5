"""The warnings msmkit cannot prevent, filtered in this one place; `msm --verbose` shows everything.

Every other warning is either fixed at its cause in msmkit or left visible. Each filter below names the
library that emits the warning, why msmkit cannot avoid it, and when it can go. Filters match the exact
message, so a new warning from the same library still shows.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

VERBOSE_VARIABLE = "MSM_VERBOSE"  # set by `msm --verbose`, so that `accelerate launch` workers show everything too

# (category, message regex, why it cannot be fixed in msmkit)
UNFIXABLE_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated",
     "PEFT 0.21 reads the deprecated transformers property `is_gradient_checkpointing` of every model it wraps "
     "(PeftModel.__init__); msmkit never reads it. Drop this filter once PEFT reads `is_activation_checkpointing`."),
)


def configure_warnings(verbose: bool | None = None) -> None:
    """Filter the known unfixable warnings, or with `verbose` show every warning and msmkit's info log.
    `verbose=None` (a subprocess such as an accelerate worker) follows MSM_VERBOSE from the parent."""
    if verbose is None:
        verbose = os.environ.get(VERBOSE_VARIABLE) == "1"
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"
        warnings.simplefilter("default")  # also the DeprecationWarnings Python hides outside __main__
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("msmkit").setLevel(logging.INFO)
        return
    for category, message, _why in UNFIXABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if not sys.stderr.isatty():
        # Written to a log, the weight-loading (transformers) and dataset-saving (datasets) bars are a line of carriage
        # returns each, several a stage; in a terminal they stay. msmkit's own bars are already quiet off a terminal.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
