"""The `dlbench` command. Heavy imports (torch, lightning, mlflow) happen inside the
subcommands that need them, so `dlbench --help` answers at once."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import TYPE_CHECKING

from dlbench.arguments import EXIT_CELLS_FAILED, build_parser
from dlbench.errors import ConfigError

if TYPE_CHECKING:  # imported by the commands that need them: `dlbench --help` stays quick
    from rich.console import Console

    from dlbench.harness.options import RunOptions
    from dlbench.harness.spec import StudySpec


def _run_options(args: argparse.Namespace) -> RunOptions:
    """The sweep flags of `run` and `submit`, once, as the object every worker gets."""
    from dlbench.harness.options import RunOptions

    return RunOptions(
        tracking=args.tracking_uri,
        storage=args.storage,
        devices=args.devices,
        workers=args.workers,
        per_device=args.per_device,
        threads=args.threads,
        stack=args.stack,
        compile_models=args.compile,
        retry_failed=args.retry_failed,
        heartbeat=args.heartbeat,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.harness.spec import load_study
    from dlbench.harness.sweep import Incomplete, run_study

    spec = load_study(args.study, smoke=args.smoke, overrides=args.overrides)
    console = Console(stderr=True)
    try:
        run_study(spec, _run_options(args), console=console)
    except Incomplete as err:  # `dlbench status` shows which cells are left
        print(f"dlbench: error: {err}", file=sys.stderr)
        return 1
    return _finished(args, spec, console)


def _finished(args: argparse.Namespace, spec: StudySpec, console: Console) -> int:
    """After a sweep: the summary, and exit 0, or 3 when some cells failed."""
    from dlbench.harness.status import states, summary_table

    console.print(summary_table(spec, args.storage))
    console.print(f"next: dlbench report {spec.name}   |   dlbench ui")
    failed = [cell for cell, state in states(spec, args.storage) if state == "failed"]
    if failed:
        print(
            f"dlbench: {len(failed)} of the study's cells failed (crashed in their own "
            f"training; `dlbench status {args.study}` names them, `dlbench run {args.study} "
            "--retry-failed` runs them again)",
            file=sys.stderr,
        )
        return EXIT_CELLS_FAILED
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.harness.spec import load_study
    from dlbench.harness.submit import SubmitOptions, submit
    from dlbench.harness.sweep import Incomplete

    spec = load_study(args.study, smoke=args.smoke, overrides=args.overrides)
    console = Console(stderr=True)
    how = SubmitOptions(
        cluster="slurm" if args.slurm else "local",
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        partition=args.partition,
        time_min=args.time,
        wait=args.wait,
    )
    try:
        submit(spec, _run_options(args), how, console)
    except Incomplete as err:
        print(f"dlbench: error: {err}", file=sys.stderr)
        return 1
    if how.cluster == "slurm" and not how.wait:
        storage = f" --storage {args.storage}" if args.storage else ""
        console.print(f"next: dlbench status {args.study}{storage}   (cells and jobs)")
        return 0
    return _finished(args, spec, console)


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dlbench.harness.spec import load_study
    from dlbench.harness.status import jobs_table, status_table

    spec = load_study(args.study, smoke=args.smoke, overrides=args.overrides)
    Console().print(status_table(spec, args.storage))
    if jobs := jobs_table(spec.name):
        Console().print(jobs)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from dlbench.report.collect import studies
    from dlbench.report.render import REPORTS_DIR, render

    if args.claims:
        from dlbench.report.claims import render_claims

        if args.all or args.studies:
            raise ConfigError("dlbench report: --claims renders the claim studies; drop the rest")
        index = render_claims((args.out or REPORTS_DIR) / "claims", args.tracking_uri)
        print(f"claims: {index} (and index.html)")
        return 0
    if args.all == bool(args.studies):
        raise ConfigError("dlbench report: give study names, --all or --claims (one of them)")
    names = studies(args.tracking_uri) if args.all else args.studies
    if not names:
        raise ConfigError("no study has runs in the tracking store yet; run one with `dlbench run`")
    failed = []
    for name in names:
        try:
            index = render(name, out=(args.out or REPORTS_DIR) / name, tracking=args.tracking_uri)
        except Exception as err:  # with --all, one broken study does not stop the others
            if not args.all:
                raise
            failed.append(name)
            print(f"dlbench: report {name} failed: {err}", file=sys.stderr)
            continue
        print(f"report: {index} (and index.html)")
    print("compare the runs: dlbench ui (or make ui) and open the address it prints")
    return 1 if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    from dlbench.components import FAMILIES
    from dlbench.problems import PROBLEMS

    families = {**FAMILIES, "problems": PROBLEMS}
    aliases = {
        "problem": "problems",
        "optimizers": "optimizer",
        "initializer": "init",
        "initializers": "init",
        "norms": "norm",
        "activations": "activation",
    }
    chosen = aliases.get(args.family, args.family)
    if chosen and chosen not in families:
        from dlbench.errors import unknown_message

        raise ConfigError(unknown_message("family", args.family, list(families)))
    for key, registry in families.items():
        if chosen and key != chosen:
            continue
        print(f"{key}:")
        for name, description in registry.describe().items():
            print(f"  {name:<16} {description}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from dlbench.harness.grid import refused
    from dlbench.harness.plan import checked_cells
    from dlbench.harness.spec import load_study

    for study in args.studies:
        spec = load_study(study, smoke=args.smoke)
        cells = len(checked_cells(spec))
        arms = refused(spec)
        note = f" ({len(arms)} arms refused: {'; '.join(f'{a}: {w}' for a, w in arms.items())})"
        print(f"ok  {spec.source}: study {spec.name!r}, {cells} cells" + (note if arms else ""))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from dlbench.records import tracking_uri

    uri = tracking_uri(args.tracking_uri)
    base = f"http://127.0.0.1:{args.port}"
    if args.study:  # checked before the server starts: an unknown study is a one-line error
        from dlbench.harness.ui_view import study_experiment, view_url
        from dlbench.report.collect import client

        url = view_url(base, study_experiment(client(uri), args.study, uri))
    else:  # workflowType=machine_learning: MLflow 3 otherwise opens on its GenAI pages.
        url = f"{base}/#/experiments?workflowType=machine_learning"
    print(f"MLflow UI for {uri} at {url} (Ctrl-C stops it)", flush=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
    ]
    # MLflow 3's job runner (huey consumers) is unused by the UI and slows its start.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return subprocess.call(command, env=env)


COMMANDS = {
    "run": cmd_run,
    "submit": cmd_submit,
    "status": cmd_status,
    "report": cmd_report,
    "list": cmd_list,
    "validate": cmd_validate,
    "ui": cmd_ui,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"dlbench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("dlbench: interrupted; run the same command again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
