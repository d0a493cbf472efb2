"""The `dlbench` command line: its subcommands, options, examples and exit statuses.

No heavy imports (torch, lightning, mlflow), so `dlbench --help` answers at once; the
commands themselves are in ``dlbench.cli``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlbench import __version__

# `dlbench run`: the sweep finished, but some cells crashed in their own training.
EXIT_CELLS_FAILED = 3

EPILOG = """\
examples:
  dlbench list                           every component family and problem
  dlbench validate studies/*.yaml        check study files, run nothing
  dlbench run optimizers                 run (or resume) studies/optimizers.yaml
  dlbench run optimizers --smoke         the file's quick `smoke:` tier (seconds)
  dlbench run optimizers --devices cpu --workers 2    two worker processes
  dlbench status optimizers              cells done / running / failed / missing
  dlbench submit grid --slurm --nodes 4 --storage postgresql://... --tracking-uri http://...
                                         a Slurm job array (README: Slurm)
  dlbench run claims/05_zero_init        a claim study (studies/claims/): a claim and its test
  dlbench run gpu/optimizers             the GPU tier (studies/gpu/: MNIST, FMNIST, CIFAR-10)
  dlbench report optimizers              render reports/optimizers/ from MLflow
  dlbench report --claims                every claim's verdict: reports/claims/index.md
  dlbench ui                             browse and compare runs in the MLflow UI

MLflow store: --tracking-uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db.
Optuna store: runs/<study>/optuna.journal unless --storage is given.
"""


def _stack(value: str) -> int:
    """``--stack``: auto (0) or a count >= 1."""
    if value == "auto":
        return 0
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be auto or an integer >= 1, got {value!r}")
    return int(value)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return int(value)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """What a sweep takes, for `run` and for each job of `submit`: the study, its tier and
    overrides, the stores, and how the machine's devices and workers are used."""
    parser.add_argument(
        "study",
        help="a study name (studies/NAME.yaml, e.g. grid, claims/05_zero_init, "
        "gpu/optimizers) or a path to a YAML file",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="apply the file's `smoke:` overrides; runs as study NAME_smoke",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field (seeds=[0], objective.metric=val/loss) or a setting "
        "(epochs=5, lr=0.01; replaces a grid axis of that name); KEY+=VALUE adds to a list "
        "(grid.optimizer+=signsgd, plugins+=[my_optim.py]); repeatable",
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    parser.add_argument(
        "--storage", help="Optuna storage URL (default: runs/<study>/optuna.journal)"
    )
    parser.add_argument(
        "--devices",
        default="auto",
        metavar="WHERE",
        help="auto (every GPU, else the CPU), cpu, or GPU indices like 0,1 (default: auto)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="CPU worker processes (default: 1; on GPUs: one per device slot)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="T",
        help="torch threads per CPU worker (default: 1: the same numbers at any worker "
        "count, and as fast as more for small models; raise it for big models)",
    )
    parser.add_argument(
        "--stack",
        type=_stack,
        default=0,
        metavar="K",
        help="train up to K cells at once as one stacked model when they differ only in "
        "seed, init, lr or optimizer (any model; the runs stay separate, tagged dlbench.stacked); "
        "1: one at a time (default: auto, up to 64 in stacks of equal size)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile each model before training (for GPUs and bigger models: the "
        "first epoch pays the compilation, tens of seconds; runs are tagged dlbench.compiled)",
    )
    parser.add_argument(
        "--per-device",
        type=int,
        default=1,
        metavar="K",
        help="workers sharing each GPU, for models too small to fill one (default: 1)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="run cells whose last attempt failed (crashed) again; diverged ones stay",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=30,
        metavar="S",
        help="with a database --storage: seconds between worker heartbeats; a worker "
        "silent for 3x this is presumed dead and its cell retried; give every machine "
        "the same value (default: 30)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlbench",
        description="Sweep training choices (optimizer, initializer, norm, ...) through Optuna, "
        "log every run to MLflow, and render comparison reports.",
        epilog=EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run or resume a study",
        formatter_class=_formatter,
        description="Run every cell of a study that has not finished yet. Finished cells are "
        "never run again: running a finished study does nothing, and an interrupted one "
        "continues where it stopped.",
        epilog="examples:\n"
        "  dlbench run optimizers\n"
        "  dlbench run studies/optimizers.yaml --smoke\n"
        "  dlbench run optimizers --set epochs=5 --set seeds=[0,1]\n"
        "  dlbench run optimizers --set grid.optimizer=[sgd,adam]\n"
        "  dlbench run optimizers --devices cpu --workers 2\n"
        "  dlbench run optimizers --devices auto --per-device 4      one worker per GPU slot\n"
        "  dlbench run optimizers --retry-failed\n"
        "  dlbench run grid --storage postgresql://user@db/optuna \\\n"
        "      --tracking-uri http://mlflow:5000                   one of several machines\n"
        "\nexit status:\n"
        "  0    every cell settled, none failed (diverged cells are results)\n"
        "  1    stopped short: an error in dlbench itself (traceback on stderr, or in\n"
        "       runs/STUDY/worker-N.log), or every worker process stopped; the cells it\n"
        "       did not finish are left to run: run the same command again\n"
        "  2    bad input (study file, --set, --storage, ...): nothing was run\n"
        f"  {EXIT_CELLS_FAILED}    the sweep finished, but some cells failed (crashed in their own "
        "training);\n       `dlbench status` names them, --retry-failed runs them again\n"
        "  130  interrupted (Ctrl-C); run the same command again to continue\n",
    )
    _sweep_arguments(run)

    submit = sub.add_parser(
        "submit",
        help="run a study as a job array on Slurm (or as local jobs)",
        formatter_class=_formatter,
        description="Submit the study's sweep as a job array through submitit: each job runs "
        "what `dlbench run` runs, on its own node's devices, against one shared Optuna "
        "database (--storage) and MLflow server (--tracking-uri), which hand out every cell "
        "exactly once. A job that reaches its time limit or is preempted is requeued; a "
        "killed job's cell is run again by the others (heartbeats). --local runs the same "
        "jobs as processes of this machine, with the default stores, and waits for them.",
        epilog="examples:\n"
        "  dlbench submit grid --slurm --nodes 4 --gpus-per-node 1 --time 120 \\\n"
        "      --storage postgresql://user@db/optuna --tracking-uri http://mlflow:5000\n"
        "  dlbench submit grid --local --nodes 2             try the path on this machine\n"
        "  dlbench status grid --storage postgresql://user@db/optuna   cells and jobs\n"
        "\nexit status: as `dlbench run` when it waits (--local, --wait); else 0 once submitted,\n"
        "2 for bad input (nothing is submitted).\n",
    )
    where = submit.add_mutually_exclusive_group(required=True)
    where.add_argument("--slurm", action="store_true", help="submit to Slurm (sbatch)")
    where.add_argument("--local", action="store_true", help="run the jobs on this machine")
    submit.add_argument(
        "--nodes",
        type=_positive,
        default=1,
        metavar="N",
        help="jobs in the array, one per node (default: 1)",
    )
    submit.add_argument(
        "--gpus-per-node",
        type=int,
        default=0,
        metavar="G",
        help="GPUs each job asks for (default: 0)",
    )
    submit.add_argument(
        "--cpus-per-task", type=_positive, metavar="C", help="CPUs each job asks for"
    )
    submit.add_argument(
        "--mem-gb", type=_positive, metavar="M", help="memory each job asks for, GB"
    )
    submit.add_argument("--partition", metavar="P", help="Slurm partition (default: the cluster's)")
    submit.add_argument(
        "--time",
        type=_positive,
        default=60,
        metavar="MIN",
        help="each job's time limit in minutes; a job that reaches it is requeued and "
        "goes on where it stopped (default: 60)",
    )
    submit.add_argument(
        "--wait", action="store_true", help="--slurm: wait for the jobs, drawing the progress"
    )
    _sweep_arguments(submit)

    status = sub.add_parser(
        "status",
        help="cells of a study by state (done, running, failed, ...)",
        formatter_class=_formatter,
        description="Count a study's cells by state, read from its Optuna storage: done, "
        "running, failed (crashed; `run --retry-failed` retries them), diverged, pruned, and "
        "missing (not run yet, or interrupted: `run` picks them up).",
        epilog="examples:\n  dlbench status optimizers\n  dlbench status optimizers --smoke\n",
    )
    status.add_argument("study", help="a study name (studies/NAME.yaml) or a path to a YAML file")
    status.add_argument("--smoke", action="store_true", help="the smoke tier (study NAME_smoke)")
    status.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the same overrides the run used",
    )
    status.add_argument(
        "--storage", help="Optuna storage URL (default: runs/<study>/optuna.journal)"
    )

    report = sub.add_parser(
        "report",
        help="render study reports from MLflow",
        formatter_class=_formatter,
        description="Read a study's runs from MLflow (and nothing else) and write "
        "reports/<study>/: index.md and a self-contained index.html (open it from disk), "
        "tables/ (Markdown, HTML, LaTeX booktabs, CSV) and figures/ (PNG, SVG, PDF). "
        "Statistics are over seeds: mean, std, 95% bootstrap CI per arm, paired "
        "comparisons between arms (Student-t CI over shared seeds), divergence rates.",
        epilog="examples:\n  dlbench report optimizers\n  dlbench report --all\n"
        "  dlbench report --claims\n"
        "  dlbench report optimizers_smoke --out /tmp/reports\n\n"
        "From Python: dlbench.results('optimizers') is the same data as a pandas frame.\n",
    )
    report.add_argument(
        "studies", nargs="*", metavar="STUDY", help="study names (MLflow experiments)"
    )
    report.add_argument(
        "--all", action="store_true", help="every study with runs in the tracking store"
    )
    report.add_argument(
        "--claims",
        action="store_true",
        help="every claim study (studies/claims/) and the verdicts page: reports/claims/",
    )
    report.add_argument(
        "--out", type=Path, help="parent folder: writes OUT/<study>/ (default: reports)"
    )
    report.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")

    lst = sub.add_parser(
        "list",
        help="list registered components and problems",
        formatter_class=_formatter,
        epilog="examples:\n  dlbench list\n  dlbench list optimizer\n  dlbench list problems\n",
    )
    lst.add_argument("family", nargs="?", help="one family, e.g. optimizer, init, norm, problems")

    validate = sub.add_parser(
        "validate",
        help="check study files without running them",
        formatter_class=_formatter,
        epilog="examples:\n  dlbench validate studies/*.yaml\n  dlbench validate optimizers --smoke\n",
    )
    validate.add_argument("studies", nargs="+", help="study names or paths")
    validate.add_argument("--smoke", action="store_true", help="check the smoke tier too")

    ui = sub.add_parser(
        "ui",
        help="open the MLflow UI for the same store",
        formatter_class=_formatter,
        epilog="examples:\n  dlbench ui\n  dlbench ui optimizers --port 5001\n"
        "then open the address it prints: with a study, its cells grouped by arm and\n"
        "their objective charted; without one, the list of experiments (studies).\n",
    )
    ui.add_argument("study", nargs="?", help="a study's name: print the address of its comparison")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///mlflow.db)")
    return parser
