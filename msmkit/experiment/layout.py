"""Names inside an experiment folder, shared by the runner and by `msm status` (which must stay light)."""

STAGES_DIR = "stages"  # one sub-folder per stage, named <kind>-<key>
REPORT_DIR = "report"
PLAN_FILE = "plan.json"
PREFLIGHT_DIR = "preflight"
