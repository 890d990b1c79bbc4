"""Batch-1 speed compared: how many times faster a variant runs than its base, with an interval, and on which
runtime.

Each notebook times its variants minutes apart; the summary times every model again, interleaved, on LiteRT's
default XNNPACK delegate and on its built-in kernels, so drift hits all models alike and each figure names its
runtime (see labkit.deploy.tflite). A change is called only when its interval excludes 1 and it is at least 5 %.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.deploy import tflite
from labkit.results import stats

Record = dict[str, Any]


Speed = tuple[float, float | None, float | None]  # times faster than the base, and its 95 % interval if known


SPEED_MARGIN = 1.05  # a speed change under 5 % is not called: it does not carry to another session or machine


def speed_factor(record: Record, base: Record, timing: str = "latency") -> Speed:
    """How many times faster than its base at batch 1 (ratio of median latencies), with a 95 % bootstrap interval
    over the rounds of an interleaved timing (None for in-run timings, which have no rounds). `timing` names the
    records' latency to compare: "latency" (LiteRT's default, XNNPACK) or "latency_builtin" (built-in kernels)."""
    ours, theirs = record[timing], base[timing]
    ratio = theirs["median_ms"] / ours["median_ms"]
    if "rounds_ms" in theirs and "rounds_ms" in ours:
        _, low, high = stats.speedup_interval(theirs["rounds_ms"], ours["rounds_ms"])
        return ratio, low, high
    return ratio, None, None


def clearly_faster(speed: Speed) -> bool:
    """Faster beyond timing noise and by a margin that matters: the interval lies above 1 and the ratio is at least
    1.05 (without an interval, by more than 25 %)."""
    return direction([speed]) > 0


def direction(speeds: list[Speed]) -> int:
    """1 if a method's variants are called faster than their base, -1 if slower, 0 if neither: from the intervals
    when they are known (changes under 5 % count as unchanged), else by more than 25 % (in-run timings drift)."""
    ratio = sum(s[0] for s in speeds) / len(speeds)
    if any(s[1] is None for s in speeds):
        return 1 if ratio >= 1.25 else -1 if ratio <= 0.8 else 0
    if min(s[1] for s in speeds) > 1 and ratio >= SPEED_MARGIN:
        return 1
    return -1 if max(s[2] for s in speeds) < 1 and ratio <= 1 / SPEED_MARGIN else 0


def words(speeds: list[Speed]) -> str:
    """Batch-1 speed of a method's variants against their base in words (see `direction` for when a change counts)."""
    ratio, way = sum(s[0] for s in speeds) / len(speeds), direction(speeds)
    if any(s[1] is None for s in speeds):
        if way:
            return f"{ratio:.1f}× faster than" if way > 0 else f"{1 / ratio:.1f}× slower than"
        return f"as fast as ({ratio:.2f}×)"
    low, high = min(s[1] for s in speeds), max(s[2] for s in speeds)
    span = f"95 % CI {low:.2f}–{high:.2f}×"
    if way > 0:
        return f"{ratio:.2f}× faster ({span}) than"
    if way < 0:
        return f"{1 / ratio:.2f}× slower ({span} as fast) than"
    if all(s[1] <= 1 <= s[2] for s in speeds):
        return f"as fast as ({ratio:.2f}×, {span}: no measurable difference)"
    if all(1 / SPEED_MARGIN < s[0] < SPEED_MARGIN for s in speeds):
        return f"as fast as ({ratio:.2f}×, {span}: within 5 %, too little to carry to another machine)"
    return f"on average {ratio:.2f}× as fast as ({span}; the variants differ)"


# Why INT8 loses under XNNPACK and wins under the built-in kernels on an AVX2 CPU without VNNI, as measured
# layer by layer in benchmarks/README.md ("Which runtime ran").
INT8_ON_AVX2 = ("on this AVX2 CPU without VNNI, XNNPACK's INT8 convolution kernel reads 8 input channels per "
                "kernel tap, so the one-channel first convolution does 8× the multiplications of its FP32 kernel, "
                "and the later layers win too little back, while the built-in kernels run INT8 on ruy, faster than "
                "their FP32 path on Eigen (per-layer timings in benchmarks/README.md)")


def with_interleaved_latency(records: list[Record], results_dir: Path) -> list[Record]:
    """Records whose batch-1 TFLite latency is re-measured for all variants together, interleaved, on XNNPACK
    (LiteRT's default: `latency`) and on the built-in kernels (`latency_builtin`), each naming its runtime.

    Each notebook timed its variants minutes apart, so machine drift can make equal models look 20 % apart;
    timing them round-robin in one go makes the speed comparison fair. The in-run figure stays as latency_in_run.
    """
    calls = {}
    for r in records:
        model = next(Path(results_dir) / f for f in r["files"] if f.endswith(".tflite"))
        for kernels in tflite.KERNELS:
            calls[f"{kernels} {r['name']}"] = tflite.batch1_call(tflite.load(model, kernels=kernels))
    measured = tflite.interleaved_latency(calls)
    return [{**r, "latency": measured[f"xnnpack {r['name']}"], "latency_builtin": measured[f"builtin {r['name']}"],
             "latency_in_run": r["latency"]} for r in records]


def timing_note(records: list[Record]) -> str:
    """Where the speed figures come from: the CPU and the runtimes of the base's timings."""
    base = next((r for r in records if r["name"] == "base-fp32"), records[0])
    if "runtime" not in base["latency"]:
        return "Batch-1 latencies are the notebooks' own; their runtime was not recorded."
    when = ("were re-measured for all models together, interleaved, when the summary was written"
            if "rounds_ms" in base["latency"] else "are the notebooks' own")
    text = (f"Batch-1 latencies {when}, on {tflite.describe_cpu(base['latency']['runtime']['cpu'])}: with "
            f"{tflite.describe(base['latency']['runtime'])}")
    if "latency_builtin" in base:
        text += (", LiteRT's default, which every speed figure below uses unless it says otherwise, and with "
                 f"{tflite.describe(base['latency_builtin']['runtime'])}")
    return text + "."
