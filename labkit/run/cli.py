"""Command line: `python -m labkit check|data|run|book|track|ui|assignment|autograde|grades`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from labkit import parameters
from labkit.course import assignment
from labkit.errors import LabkitError, NotWritten, UnitFailed

COURSE_FILES = {
    "input_model": "state dict of the course's classifier: the base of structured pruning (instead of training one)",
    "backup_model": "where the pruned model goes, before fine-tuning (state dict)",
    "final_model": "where the pruned model goes after fine-tuning (state dict)",
    "onnx_model": "where the fine-tuned pruned model goes as ONNX",
    "tflite_model": "where the fine-tuned pruned model goes as FP32 TensorFlow Lite",
}


def _check(args: argparse.Namespace) -> int:
    from labkit.stack import check_stack

    for name, version in check_stack().items():
        print(f"{name:32s} {version}")
    print("stack ok: every package of the lab imports in one process")
    return 0


def _data(args: argparse.Namespace) -> int:
    from labkit.data import describe, load_dataset

    data = describe(args.dataset, args.dataset_root, args.download_dataset)
    print(load_dataset(data, seed=0).describe())
    print(f"checksum {data.sha256} over {data.files} files in {data.root}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import papermill as pm
    from nbclient.exceptions import DeadKernelError

    from labkit.run import runner

    signal.signal(signal.SIGTERM, _stop)  # `kill` stops a run as cleanly as Ctrl-C
    kept = "the partly executed notebook is kept as *.running.ipynb in the results folder"
    ray = args.ray_address or ((os.environ.get("RAY_ADDRESS") or "local") if args.ray else None)
    try:
        params = parameters.parse_params(args.param)
        if args.margin_pp is not None:
            params["margin_pp"] = args.margin_pp
        runner.run(args.tasks, args.dataset, args.dataset_root, args.download_dataset, args.results_path,
                   args.test_dataset_fraction, args.force, params, args.summary_path,
                   args.seeds, args.model_path, {name: getattr(args, name) for name in COURSE_FILES}, ray=ray,
                   tracking_uri=args.tracking_uri, track=not args.no_tracking, scale=args.scale)
    except NotWritten as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except UnitFailed as err:
        print(f"error: units failed: {err}. Finished units are kept: fix the cause and run the same command again",
              file=sys.stderr)
        return 1
    except pm.PapermillExecutionError as err:
        print(f"error: {err.ename}: {err.evalue} (notebook cell {err.exec_count}; {kept})", file=sys.stderr)
        return 1
    except DeadKernelError:
        print(f"error: the notebook kernel died (killed, or out of memory); {kept}. Finished variants are kept: "
              "run the same command again to resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The stopped cell's task fails once its kernel is shut down; asyncio would print that traceback at exit.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("stopped: finished variants are kept; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def _book(args: argparse.Namespace) -> int:
    from labkit.paths import ROOT
    from labkit.results import book

    results = Path(args.results).resolve() if args.results else ROOT / "results" / "fashion-mnist"
    if not results.is_dir():
        raise LabkitError(f"{results} is not a folder: name a results folder (e.g. results/fashion-mnist)")
    landing = book.build(results, args.seeds, Path(args.out).resolve() if args.out else None)
    print(f"open {landing} (or serve it: python -m http.server -d {landing.parent})")
    return 0


def _track(args: argparse.Namespace) -> int:
    from labkit.lock import hold_folder
    from labkit.run import tracking

    results = Path(args.results).resolve()
    if not results.is_dir():
        raise LabkitError(f"{results} is not a folder: name a results folder (e.g. results/fashion-mnist)")
    tracker = tracking.tracker_for(results, args.tracking_uri, "unknown (logged by labkit track)")
    with hold_folder(results):
        logged, total = tracking.track(results, tracker)
    if tracker.failed:
        print(f"error: tracking: {tracker.failed}; run it again once the tracker is reachable", file=sys.stderr)
        return 1
    print(f"logged {logged} of {total} records to {tracker.uri} ({total - logged} were logged already)")
    return 0


def _ui(args: argparse.Namespace) -> int:
    import subprocess

    from labkit.paths import ROOT
    from labkit.run import tracking

    results = Path(args.results).resolve() if args.results else ROOT / "results" / "fashion-mnist"
    uri, artifacts = tracking.default_store(results)
    if not (results / tracking.STORE / "mlflow.db").is_file():
        raise LabkitError(f"no runs in {results / tracking.STORE}: run the lab first (`python -m labkit run`), or "
                          "name its results folder (`make ui RESULTS=...`)")
    print(f"MLflow UI over {uri} at http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--default-artifact-root",
               artifacts, "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    # Without MLflow's job runner (GenAI scorers, a process more) and the server's own deprecation notice.
    quiet = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "PYTHONWARNINGS": "ignore:starlette.middleware.wsgi"}
    try:
        return subprocess.call(command, env={**tracking.ENVIRONMENT, **quiet, **os.environ})
    except KeyboardInterrupt:
        return 0


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _task_list() -> str:
    from labkit.run.runner import NAMED_TASKS

    tasks = "tasks:\n" + "\n".join(f"  {name:32s} {text}" for name, text in NAMED_TASKS.items())
    return f"{tasks}\n\n{parameters.help_text()}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="import the whole stack in one process and print versions").set_defaults(
        func=_check)
    data = commands.add_parser("data", help="load a dataset and say what it holds")
    add_dataset_options(data)
    data.set_defaults(func=_data)
    run = commands.add_parser("run", help="run lab tasks: execute the notebooks and keep their results",
                              epilog=_task_list(), formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--tasks", nargs="+", default=None,
                     help="task names, space or comma separated (default: all; structured-0.5 with the course's "
                          "structured-pruning files)")
    add_dataset_options(run)
    run.add_argument("--dataset-path", dest="dataset_root", help="the course's name for --dataset-root")
    run.add_argument("--model-path", default=None,
                     help="your Keras classifier (.h5, .keras or SavedModel) as the base of the Keras tasks")
    course = run.add_argument_group("the course's structured-pruning files (each written atomically)")
    for name, text in COURSE_FILES.items():
        course.add_argument(f"--{name.replace('_', '-')}", default=None, metavar="FILE", help=text)
    run.add_argument("--results-path", default=None, help="results folder (default results/<dataset>)")
    run.add_argument("--summary-path", default=None,
                     help="folder of the lab summary and HTML reports (default: summaries/l03_pruning_clustering for "
                          "the lab's default run, `make lab`; <results>/summary for any other run)")
    run.add_argument("--test-dataset-fraction", type=float, default=1.0, help="share of the test set, in (0, 1]")
    run.add_argument("--force", action="store_true", help="redo variants whose results exist")
    run.add_argument("--scale", choices=["full", "quick"], default="full",
                     help="quick: a first look (less data, a short fine-tuning, fewer variants, in "
                          "results/<dataset>-quick) whose verdicts are not the methods'; full: the lab (default)")
    run.add_argument("--margin-pp", type=float, default=None, metavar="PP",
                     help="non-inferiority margin: a variant is within it when its accuracy change against its "
                          "control rules out a loss larger than PP percentage points (default 1.0)")
    run.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                     help="run the lab once per seed (base and every variant); the summary reports mean ± std "
                          "and each seed (default: 42)")
    run.add_argument("--ray", action="store_true",
                     help="run every seed's variants as tasks on a local Ray instance started for the run "
                          "(on the cluster at $RAY_ADDRESS when set)")
    run.add_argument("--ray-address", default=None, metavar="ADDRESS",
                     help="run them on the existing Ray cluster at ADDRESS (its nodes need the project, results "
                          "and models folders on shared storage at the same path)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                     help="set a notebook parameter, e.g. -p train_samples=600 -p base_epochs=1")
    add_tracking_option(run)
    run.add_argument("--no-tracking", action="store_true", help="log no MLflow runs")
    run.set_defaults(func=_run)
    book = commands.add_parser("book", help="build the executed lab and its documentation into one offline site")
    book.add_argument("results", nargs="?", default=None,
                      help="the results folder of a run (default: the lab's, results/fashion-mnist in the project)")
    book.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                      help="whose notebooks become the chapters: the first seed's (default: the folder's first)")
    book.add_argument("--out", default=None, metavar="FOLDER", help="where the site goes (default <results>/book)")
    book.set_defaults(func=_book)
    track = commands.add_parser("track", help="log to MLflow the records of a results folder that are not logged yet")
    track.add_argument("results", help="the results folder (e.g. results/fashion-mnist)")
    add_tracking_option(track)
    track.set_defaults(func=_track)
    ui = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 over a results folder's own store")
    ui.add_argument("results", nargs="?", default=None,
                    help="the results folder (default: the lab's, results/fashion-mnist in the project)")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    ui.set_defaults(func=_ui)
    assignment.add_commands(commands)
    return parser


def add_tracking_option(parser: argparse.ArgumentParser) -> None:
    """Where MLflow runs go."""
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="MLflow tracking server or store for the runs (default: $MLFLOW_TRACKING_URI, else "
                             "the results folder's own store, <results>/mlflow)")


def add_dataset_options(parser: argparse.ArgumentParser) -> None:
    """The dataset options shared by every command that reads data."""
    parser.add_argument("--dataset", choices=["fashion-mnist", "oxford-pets", "image-folder", "idx"], default=None,
                        help="default: recognised from the layout under --dataset-root, else fashion-mnist")
    parser.add_argument("--dataset-root", default=None,
                        help="folder holding the dataset: Oxford-IIIT Pet layout, IDX files, or one folder per class")
    parser.add_argument("--download-dataset", action="store_true", help="download the dataset if not found")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LabkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
