"""The scale item's lockstep pair: two processes that take turns, and neither waits for a
partner that has gone (bench/lockstep.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.lockstep import pair

# each side writes a line per step, then hands the turn over; the second side's steps are slow,
# so the first side waits at least that long for every turn it hands over
STEPS = """
import sys, time
from bench.lockstep import Baton

name, baton, log, steps, die_after = sys.argv[1], Baton.from_arg(sys.argv[2]), sys.argv[3], \\
    int(sys.argv[4]), int(sys.argv[5])
baton.begin()
for step in range(steps):
    if name == "B":
        time.sleep(0.2)
    with open(log, "a") as out:
        out.write(f"{name}{step}\\n")
    if step == die_after:
        sys.exit(3)
    waited = baton.turn()
    with open(log, "a") as out:
        out.write(f"{name} waited {waited:.3f}\\n")
baton.end()
"""


def _side(name: str, log: Path, steps: int = 4, die_after: int = -1) -> list[str]:
    return [sys.executable, "-c", STEPS, name, "{baton}", str(log), str(steps), str(die_after)]


def _steps(log: Path) -> list[str]:
    return [line for line in log.read_text().split() if line[0] in "AB" and line[1:].isdigit()]


@pytest.mark.timeout(60)
def test_two_sides_take_turns_step_by_step_and_count_the_time_they_waited(tmp_path: Path) -> None:
    log = tmp_path / "log"
    pair(_side("A", log), _side("B", log))
    assert _steps(log) == ["A0", "B0", "A1", "B1", "A2", "B2", "A3", "B3"]
    waits = [float(line.split()[-1]) for line in log.read_text().splitlines()
             if line.startswith("A waited")]
    assert len(waits) == 4
    assert all(wait >= 0.2 for wait in waits[:3])  # B's slow step was in every one but the last


@pytest.mark.timeout(60)
def test_a_side_goes_on_alone_when_its_partner_dies_and_the_pair_fails(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(subprocess.CalledProcessError) as failed:
        pair(_side("A", log, die_after=1), _side("B", log))
    assert failed.value.returncode == 3
    assert _steps(log) == ["A0", "B0", "A1", "B1", "B2", "B3"]
