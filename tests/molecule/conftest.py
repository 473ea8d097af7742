"""The scenarios need the lab's images, and those that deploy backends its artifact cache: make sure they are ready."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 30 * 60
PLATFORMS = ("debian12", "debian13", "ubuntu2404")


def _wait_for_background(status_variable: str, log_variable: str, what: str) -> None:
    """Wait until scripts/test.sh's background job writes its exit status, and fail with its log if not 0."""
    status = Path(os.environ[status_variable])
    deadline = time.monotonic() + WAIT_SECONDS
    while not status.exists():
        assert time.monotonic() < deadline, f"{what} were not ready within {WAIT_SECONDS} s"
        time.sleep(5)
    log = Path(os.environ.get(log_variable, "/dev/null"))
    tail = "\n".join(log.read_text().splitlines()[-40:]) if log.is_file() else ""
    assert status.read_text().strip() == "0", f"{what} failed:\n{tail}"


@pytest.fixture(scope="session")
def lab_images() -> None:
    """Wait for scripts/test.sh's background image builds, or build what is missing now when run alone."""
    if not os.environ.get("LAB_IMAGES_STATUS"):
        for platform in PLATFORMS:
            subprocess.run(["bash", str(TOP / "scripts" / "build-lab-image.sh"), platform], check=True)
        return
    _wait_for_background("LAB_IMAGES_STATUS", "LAB_IMAGES_LOG", "the lab's images (scripts/build-lab-image.sh)")


@pytest.fixture(scope="session")
def lab_artifacts() -> None:
    """Wait for scripts/test.sh's background preparation, or prepare the cache now when run alone."""
    if not os.environ.get("LAB_ARTIFACTS_STATUS"):
        subprocess.run(["bash", str(TOP / "scripts" / "prepare-lab-artifacts.sh")], check=True)
        return
    _wait_for_background(
        "LAB_ARTIFACTS_STATUS", "LAB_ARTIFACTS_LOG", "the lab's artifacts (scripts/prepare-lab-artifacts.sh)"
    )
