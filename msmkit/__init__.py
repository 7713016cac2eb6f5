"""msmkit: Model Spec Midtraining end to end."""

__version__ = "0.1.0"
