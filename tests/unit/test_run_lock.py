# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run_lock module on a real lock file: one run at a time, waited for, broken only by name."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.labai.llm_stack.plugins.module_utils import run_lock as lock_utils
from ansible_collections.labai.llm_stack.plugins.modules import run_lock
from module_runner import run_host_module

ALICE = {"id": "20261202T130000Z-1", "user": "alice", "controller": "ops1", "playbook": "site.yml"}
BOB = {"id": "20261202T130005Z-2", "user": "bob", "controller": "ops2", "playbook": "playbooks/rollback.yml"}


def run(capsys: pytest.CaptureFixture, check_mode: bool = False, **args) -> dict:
    return run_host_module(run_lock.main, args, capsys, check_mode=check_mode)


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    return tmp_path / "labai.llm_stack.lock"


def test_a_free_lock_is_taken_and_names_the_run(capsys, lock):
    result = run(capsys, path=str(lock), run=ALICE)
    assert result["acquired"] and not result["changed"] and result["broke"] is None
    held = json.loads(lock.read_text())
    assert {key: held[key] for key in ALICE} == ALICE
    assert held["acquired"].endswith("Z") and held["boot_id"]
    assert oct(lock.stat().st_mode & 0o777) == "0o644"


def test_taking_it_again_in_the_same_run_keeps_it(capsys, lock):
    run(capsys, path=str(lock), run=ALICE)
    before = lock.read_text()
    result = run(capsys, path=str(lock), run=ALICE)
    assert result["acquired"] and result["already_held"]
    assert lock.read_text() == before


def test_another_run_is_refused_with_the_holder_and_how_to_break_it(capsys, lock):
    run(capsys, path=str(lock), run=ALICE)
    result = run(capsys, path=str(lock), run=BOB)
    assert result["failed"]
    message = result["msg"]
    assert f"Another run holds the deployment lock {lock}: run {ALICE['id']} by alice@ops1 (site.yml)" in message
    assert f"-e llm_stack_run_lock_break={ALICE['id']}" in message
    assert json.loads(lock.read_text())["id"] == ALICE["id"]


def test_a_run_waits_until_the_holder_releases(capsys, lock):
    lock_utils.acquire(str(lock), ALICE)
    releaser = threading.Timer(1.5, lambda: lock_utils.release(str(lock), ALICE["id"]))
    releaser.start()
    try:
        result = lock_utils.acquire(str(lock), BOB, wait=20, poll=0.2)
    finally:
        releaser.cancel()
    assert result["acquired"] and result["held_by"]["id"] == BOB["id"]
    assert 1.0 <= result["waited"] < 20


def test_waiting_ends_with_the_refusal_when_the_holder_stays(capsys, lock):
    run(capsys, path=str(lock), run=ALICE)
    result = run(capsys, path=str(lock), run=BOB, wait=1)
    assert result["failed"] and "after waiting 1 s" in result["msg"]


def test_only_the_named_run_is_broken(capsys, lock):
    run(capsys, path=str(lock), run=ALICE)
    refused = run(capsys, path=str(lock), run=BOB, break_run="some-other-run")
    assert refused["failed"] and ALICE["id"] in refused["msg"]
    broke = run(capsys, path=str(lock), run=BOB, break_run=ALICE["id"])
    assert broke["acquired"] and broke["broke"]["id"] == ALICE["id"] and broke["broke"]["reason"] == "broken as asked"
    assert any(f"Took over the deployment lock of run {ALICE['id']}" in warning for warning in broke["warned"])
    assert json.loads(lock.read_text())["id"] == BOB["id"]
    assert list(lock.parent.iterdir()) == [lock]


def test_a_lock_from_before_the_host_restarted_is_taken_over(capsys, lock):
    lock.write_text(json.dumps({**ALICE, "acquired": "2026-12-01T00:00:00Z", "boot_id": "an-earlier-boot"}))
    result = run(capsys, path=str(lock), run=BOB)
    assert result["acquired"] and result["broke"]["reason"] == "held before the host restarted"


def test_a_lock_cut_short_while_written_is_named_unreadable_and_can_be_broken(capsys, lock):
    lock.write_text('{"id": "2026')
    refused = run(capsys, path=str(lock), run=BOB)
    assert refused["failed"] and "-e llm_stack_run_lock_break=unreadable" in refused["msg"]
    assert run(capsys, path=str(lock), run=BOB, break_run="unreadable")["acquired"]


def test_release_removes_only_this_runs_lock(capsys, lock):
    run(capsys, path=str(lock), run=ALICE)
    other = run(capsys, path=str(lock), run=BOB, state="absent")
    assert not other["released"] and other["held_by"]["id"] == ALICE["id"] and lock.exists()
    assert any(f"held by run {ALICE['id']}, not this one" in warning for warning in other["warned"])
    own = run(capsys, path=str(lock), run=ALICE, state="absent")
    assert own["released"] and not own["changed"] and not lock.exists()
    again = run(capsys, path=str(lock), run=ALICE, state="absent")
    assert not again["released"] and again["held_by"] is None


def test_check_mode_writes_and_removes_nothing_but_still_refuses(capsys, lock):
    would = run(capsys, check_mode=True, path=str(lock), run=ALICE)
    assert not would["acquired"] and not lock.exists()
    run(capsys, path=str(lock), run=ALICE)
    assert run(capsys, check_mode=True, path=str(lock), run=BOB)["failed"]
    assert run(capsys, check_mode=True, path=str(lock), run=ALICE, state="absent")["released"]
    assert lock.exists()


def test_a_symbolic_link_or_a_foreign_file_is_refused_and_left_alone(capsys, lock, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    lock.symlink_to(target)
    result = run(capsys, path=str(lock), run=ALICE)
    assert result["failed"] and "Cannot read the deployment lock" in result["msg"]
    assert target.read_text() == "precious" and lock.is_symlink()


def test_a_lock_of_another_user_is_refused(capsys, lock, monkeypatch):
    lock.write_text(json.dumps(ALICE))
    owner = lock.stat().st_uid
    # The module runs as another user than the lock's owner.
    monkeypatch.setattr(lock_utils.os, "geteuid", lambda: owner + 1)
    result = run(capsys, path=str(lock), run=BOB)
    assert result["failed"] and f"owned by uid {owner})" in result["msg"]
    assert json.loads(lock.read_text()) == ALICE


def _contend(path: str, run_id: str, start: float, results) -> None:
    while time.time() < start:
        time.sleep(0.001)
    try:
        lock_utils.acquire(path, {"id": run_id})
        results.put(("held", run_id))
    except lock_utils.LockError as exc:
        results.put(("refused", str(exc)))


def test_of_runs_asking_at_once_exactly_one_holds_it(lock):
    results = multiprocessing.get_context("fork").Queue()
    start = time.time() + 0.5
    contenders = [
        multiprocessing.get_context("fork").Process(target=_contend, args=(str(lock), f"run-{n}", start, results))
        for n in range(8)
    ]
    for process in contenders:
        process.start()
    for process in contenders:
        process.join(30)
    outcomes = [results.get(timeout=5) for _ in contenders]
    held = [run_id for kind, run_id in outcomes if kind == "held"]
    assert len(held) == 1
    assert json.loads(lock.read_text())["id"] == held[0]
    assert all(f"run {held[0]} by" in text for kind, text in outcomes if kind == "refused")


def test_wait_must_not_be_negative(capsys, lock):
    result = run(capsys, path=str(lock), run=ALICE, wait=-1)
    assert result["failed"] and "wait must be 0 or more" in result["msg"]
