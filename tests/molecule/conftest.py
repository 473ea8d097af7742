"""The scenarios that deploy backends install from the lab's artifact cache: make sure it is ready."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30 * 60


@pytest.fixture(scope="session")
def lab_artifacts() -> None:
    """Wait for scripts/test.sh's background preparation, or prepare the cache now when run alone."""
    status = os.environ.get("LAB_ARTIFACTS_STATUS")
    if not status:
        subprocess.run(["bash", str(TOP / "scripts" / "prepare-lab-artifacts.sh")], check=True)
        return
    deadline = time.monotonic() + WAIT_SECONDS
    while not Path(status).exists():
        assert time.monotonic() < deadline, f"the lab's artifacts were not ready within {WAIT_SECONDS} s"
        time.sleep(5)
    log = Path(os.environ.get("LAB_ARTIFACTS_LOG", "/dev/null"))
    tail = "\n".join(log.read_text().splitlines()[-40:]) if log.is_file() else ""
    assert Path(status).read_text().strip() == "0", f"scripts/prepare-lab-artifacts.sh failed:\n{tail}"
