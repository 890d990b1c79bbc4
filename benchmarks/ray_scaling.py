"""The same plan run sequentially and on a local Ray instance on this machine: wall times, their ratio, the plan's
critical path and the wall time it bounds on more nodes.

Each run starts from empty results and models folders (bases are trained in both), so the two do the same work.
`python benchmarks/ray_scaling.py` prints this table alone; `make bench` prints it with the others.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import pandas as pd

import labkit  # noqa: F401  (legacy Keras before TensorFlow)
from labkit import parameters
from labkit.run import runner

TASKS = ["clustered-4-fp32", "clustered-16-fp32", "pruned-0.5-fp32", "structured-0.5"]
PARAMS = {"train_samples": 3000, "base_epochs": 2, "training_batches": 1000, "netron_live": False}


def timed_run(tasks: list[str], params: dict, where: Path, ray: str | None) -> tuple[float, list[str]]:
    """Wall time of one run of the plan into fresh folders, and what it logged."""
    lines: list[str] = []
    start = time.monotonic()
    runner.run(tasks, results_path=str(where / "results"), test_dataset_fraction=0.2,
               params={**params, "models_dir": str(where / "models")}, log=lines.append, ray=ray)
    return time.monotonic() - start, lines


def ray_scaling(tasks: list[str] = TASKS, params: dict = PARAMS) -> pd.DataFrame:
    """Sequential against local Ray for the same plan, and the wall-time bound on N such nodes.

    The bound is the larger of the critical path (the longest chain of units that must run one after another) and
    the total unit time spread over N × this machine's CPUs; Ray's start-up and scheduling come on top.
    """
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        sequential, _ = timed_run(tasks, params, Path(tmp) / "sequential", None)
        on_ray, lines = timed_run(tasks, params, Path(tmp) / "ray", "local")
    units = {m[1]: float(m[2]) for line in lines if (m := re.match(r"done (\S+) in (\d+) s", line))}
    critical = next(line for line in lines if line.startswith("critical path"))
    cpus = int(re.search(r"(\d+) CPUs", next(line for line in lines if line.startswith("running "))).group(1))
    path_s = float(re.match(r"critical path (\d+) s", critical)[1])
    print(f"\n{critical}\n")
    rows = [{"run": "sequential", "wall (s)": sequential, "ratio to sequential": 1.0},
            {"run": f"local Ray, {cpus} CPUs", "wall (s)": on_ray, "ratio to sequential": on_ray / sequential},
            {"run": "critical path (units)", "wall (s)": path_s, "ratio to sequential": path_s / sequential}]
    for nodes in (2, 4, 8):
        bound = max(path_s, sum(units.values()) / (nodes * cpus))
        rows.append({"run": f"bound on {nodes} such nodes", "wall (s)": bound,
                     "ratio to sequential": bound / sequential})
    return pd.DataFrame(rows).set_index("run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    print(ray_scaling(args.tasks, {**PARAMS, **parameters.parse_params(args.param)}).to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main()
