"""Every molecule scenario, end to end on the lab's systemd containers (scripts/test.sh builds the images)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# These need none of the lab's artifacts, which are still being made meanwhile: they run first.
WITHOUT_ARTIFACTS = ("default", "nvidia_driver", "preflight")
SCENARIOS = sorted(
    sorted(p.parent.name for p in (TOP / "molecule").glob("*/molecule.yml")),
    key=lambda name: name not in WITHOUT_ARTIFACTS,
)
LOGS = TOP / ".cache" / "logs"


NEEDS_ARTIFACTS = [scenario for scenario in SCENARIOS if scenario not in WITHOUT_ARTIFACTS]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("lab_images")
    if scenario in NEEDS_ARTIFACTS:
        request.getfixturevalue("lab_artifacts")
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"molecule-{scenario}.log"
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "NO_COLOR": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PY_COLORS": "0",
    }
    with log.open("w") as out:
        result = subprocess.run(
            [str(BIN / "molecule"), "test", "-s", scenario],
            cwd=TOP,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    tail = "\n".join(log.read_text().splitlines()[-80:])
    assert result.returncode == 0, f"molecule test -s {scenario} failed (full log: {log}):\n{tail}"


def test_scenarios_found() -> None:
    assert SCENARIOS[:3] == ["default", "nvidia_driver", "preflight"]
    assert {"site", "fleet", "llamacpp", "ollama"} <= set(NEEDS_ARTIFACTS)
