"""How studies are run: spec parsing, grid expansion, Optuna storage, MLflow tracking, sweeps."""
