"""dlbench: see how training choices behave, one study file at a time."""

__version__ = "0.1.0"
