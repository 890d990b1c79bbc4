"""Microcontroller boards and what a model needs to fit one: flash for the model file and the runtime's code, RAM
for the tensor arena and the runtime's own.

The boards' memories are their datasheets'. TFLM's measured arena is the x86-64 build's: on a 32-bit board the
interpreter's bookkeeping is smaller, but optimized kernels (CMSIS-NN, ESP-NN) add scratch buffers the reference
kernels do not need (tflite-micro issue 2474), so the arena is given a margin. The runtime's code and stack are an
allowance, not a measurement: change `Allowance` for your build.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

KB = 1024


@dataclass(frozen=True)
class Board:
    """A board's name, its microcontroller, and its SRAM and flash in bytes."""

    name: str
    chip: str
    sram_bytes: int
    flash_bytes: int


BOARDS = [
    Board("Arduino Nano 33 BLE Sense", "nRF52840, Cortex-M4F", 256 * KB, 1024 * KB),
    Board("Raspberry Pi Pico", "RP2040, Cortex-M0+", 264 * KB, 2048 * KB),
    Board("STM32F746G-DISCO", "STM32F746NG, Cortex-M7", 320 * KB, 1024 * KB),
    Board("ESP32-S3-DevKitC-1 (N8)", "ESP32-S3, Xtensa LX7", 512 * KB, 8192 * KB),
    Board("STM32H747I-DISCO", "STM32H747XI, Cortex-M7", 1024 * KB, 2048 * KB),
]


@dataclass(frozen=True)
class Allowance:
    """What a model needs beyond its file and x86 arena: the runtime's code in flash (TFLM's interpreter and the
    kernels of a small CNN), its RAM outside the arena (stack, interpreter objects), and a margin on the arena for
    a board's optimized kernels."""

    runtime_flash_bytes: int = 96 * KB
    runtime_ram_bytes: int = 16 * KB
    arena_factor: float = 1.25

    def flash(self, model_bytes: int) -> int:
        return model_bytes + self.runtime_flash_bytes

    def ram(self, arena_bytes: int) -> int:
        return int(arena_bytes * self.arena_factor) + self.runtime_ram_bytes

    def words(self) -> str:
        return (f"flash = model file + {self.runtime_flash_bytes // KB} KB for TFLM's code; RAM = "
                f"{self.arena_factor:g} × the x86 arena + {self.runtime_ram_bytes // KB} KB for stack and runtime")


ALLOWANCE = Allowance()


def load(path: str | Path | None = None) -> list[Board]:
    """The lab's boards, and the user's own from a CSV file with columns name, chip, sram_kb, flash_kb."""
    if path is None:
        return list(BOARDS)
    path = Path(path)
    if not path.is_file():
        raise LabkitError(f"boards file {path} does not exist: give a CSV file with columns name,chip,sram_kb,flash_kb")
    try:
        with path.open(newline="") as handle:
            own = [Board(row["name"], row["chip"], int(float(row["sram_kb"]) * KB), int(float(row["flash_kb"]) * KB))
                   for row in csv.DictReader(handle)]
    except (KeyError, ValueError, TypeError) as err:
        raise LabkitError(f"{path}: every row needs name, chip, sram_kb and flash_kb (numbers in KB): {err}") from err
    return [*BOARDS, *own]


def forms(micro: dict[str, Any]) -> list[dict[str, Any]]:
    """The ways a measured model can go on a board: its plain file, and its look-up-table compressed file when that
    gave exactly the plain file's outputs; each with the flash and arena bytes it needs."""
    if not micro.get("runs"):
        return []
    found = [{"form": "plain", "flash_bytes": micro["flash_bytes"], "arena_bytes": micro["arena_bytes"]}]
    packed = micro.get("compressed", {})
    if "flash_bytes" in packed and packed["identical_to_plain"] == micro["sample"]:
        found.append({"form": "LUT-compressed", "flash_bytes": packed["flash_bytes"],
                      "arena_bytes": packed["arena_bytes"]})
    return found


def fitting_form(micro: dict[str, Any], board: Board, allowance: Allowance = ALLOWANCE) -> dict[str, Any] | None:
    """The form of the model that fits the board with the allowance (the one taking the least flash), or None."""
    fit = [f for f in forms(micro) if allowance.flash(f["flash_bytes"]) <= board.flash_bytes
           and allowance.ram(f["arena_bytes"]) <= board.sram_bytes]
    return min(fit, key=lambda f: f["flash_bytes"], default=None)
