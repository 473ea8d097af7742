# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment_backup module on real files: saved once per content, restored byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.labai.llm_stack.plugins.modules import deployment_backup
from module_runner import run_module


def run(capsys: pytest.CaptureFixture, check_mode: bool = False, **args) -> dict:
    return run_module(deployment_backup.main, args, capsys, check_mode=check_mode)


@pytest.fixture
def host(tmp_path: Path) -> dict:
    """A service account's files: two units, an env file, and a file the patterns do not cover."""
    units = tmp_path / "systemd"
    units.mkdir()
    (units / "llm-a.service").write_bytes(b"[Service]\nExecStart=/bin/a\n")
    (units / "llm-b.service").write_bytes(b"[Service]\nExecStart=/bin/b\n")
    (units / "other.service").write_bytes(b"not ours\n")
    env = tmp_path / "env"
    env.mkdir()
    (env / "a.env").write_bytes(b"KEY=secret\n\x00binary\xff")
    os.chmod(env / "a.env", 0o600)
    return {
        "root": str(tmp_path / "backups"),
        "paths": [f"{units}/llm-*.service", f"{env}/*.env"],
        "dir": tmp_path,
    }


def args(host: dict, **more) -> dict:
    return {"root": host["root"], "paths": host["paths"], **more}


def test_saves_every_matching_file_with_checksum_and_mode(host, capsys):
    result = run(capsys, **args(host, label="before deploy"))
    assert result["changed"] is True
    assert result["created"] is True
    saved = {Path(entry["path"]).name: entry for entry in result["files"]}
    assert sorted(saved) == ["a.env", "llm-a.service", "llm-b.service"]
    assert saved["a.env"]["mode"] == "0600"
    copy = Path(result["path"]) / "files" / str(host["dir"] / "env" / "a.env").lstrip("/")
    assert copy.read_bytes() == b"KEY=secret\n\x00binary\xff"
    assert result["backups"] == [
        {
            "name": result["backup"],
            "kind": "deployment",
            "label": "before deploy",
            "created": result["backups"][0]["created"],
            "files": 3,
        }
    ]


def test_a_second_save_of_the_same_files_changes_nothing(host, capsys):
    first = run(capsys, **args(host))
    second = run(capsys, **args(host))
    assert second["changed"] is False
    assert second["created"] is False
    assert second["backup"] == first["backup"]
    assert len(second["backups"]) == 1


def test_a_changed_mode_is_a_new_backup(host, capsys):
    run(capsys, **args(host))
    os.chmod(host["dir"] / "env" / "a.env", 0o640)
    assert run(capsys, **args(host))["created"] is True


def test_check_mode_saves_nothing(host, capsys):
    result = run(capsys, check_mode=True, **args(host))
    assert result["changed"] is True
    assert result["created"] is True
    assert not Path(host["root"]).exists()


def test_restore_puts_back_bytes_and_modes_and_removes_newer_files(host, capsys):
    saved = run(capsys, **args(host))
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    env_a = host["dir"] / "env" / "a.env"
    unit_a.write_bytes(b"[Service]\nExecStart=/bin/broken\n")
    os.chmod(env_a, 0o644)
    (host["dir"] / "systemd" / "llm-new.service").write_bytes(b"added later\n")
    (host["dir"] / "systemd" / "llm-b.service").unlink()

    result = run(capsys, **args(host, state="restored"))

    assert result["changed"] is True
    assert result["backup"] == saved["backup"]
    assert sorted(Path(path).name for path in result["restored"]) == ["a.env", "llm-a.service", "llm-b.service"]
    assert [Path(path).name for path in result["removed"]] == ["llm-new.service"]
    assert unit_a.read_bytes() == b"[Service]\nExecStart=/bin/a\n"
    assert (host["dir"] / "systemd" / "llm-b.service").read_bytes() == b"[Service]\nExecStart=/bin/b\n"
    assert env_a.read_bytes() == b"KEY=secret\n\x00binary\xff"
    assert oct(env_a.stat().st_mode & 0o777) == "0o600"
    assert not (host["dir"] / "systemd" / "llm-new.service").exists()
    assert (host["dir"] / "systemd" / "other.service").read_bytes() == b"not ours\n"


def test_restore_first_saves_what_it_replaces(host, capsys):
    saved = run(capsys, **args(host))
    (host["dir"] / "systemd" / "llm-a.service").write_bytes(b"broken\n")
    (host["dir"] / "systemd" / "llm-new.service").write_bytes(b"added later\n")

    result = run(capsys, **args(host, state="restored"))

    kept = result["saved_before_restore"]
    assert kept and kept != saved["backup"]
    listing = {entry["name"]: entry for entry in result["backups"]}
    assert listing[kept]["kind"] == "before-restore"
    assert listing[kept]["files"] == 2
    assert (
        Path(host["root"]) / kept / "files" / str(host["dir"] / "systemd" / "llm-a.service").lstrip("/")
    ).read_bytes() == b"broken\n"


def test_restore_by_default_skips_before_restore_backups(host, capsys):
    good = run(capsys, **args(host))
    (host["dir"] / "systemd" / "llm-a.service").write_bytes(b"broken\n")
    run(capsys, **args(host, state="restored"))
    again = run(capsys, **args(host, state="restored"))
    assert again["backup"] == good["backup"]
    assert again["changed"] is False
    assert again["restored"] == [] and again["removed"] == []


def test_restore_a_named_backup(host, capsys):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    first = run(capsys, **args(host))
    unit_a.write_bytes(b"second version\n")
    second = run(capsys, **args(host))
    assert second["backup"] != first["backup"]

    result = run(capsys, **args(host, state="restored", name=first["backup"]))

    assert result["backup"] == first["backup"]
    assert unit_a.read_bytes() == b"[Service]\nExecStart=/bin/a\n"


def test_restore_in_check_mode_changes_nothing(host, capsys):
    run(capsys, **args(host))
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    unit_a.write_bytes(b"broken\n")
    result = run(capsys, check_mode=True, **args(host, state="restored"))
    assert result["changed"] is True
    assert [Path(path).name for path in result["restored"]] == ["llm-a.service"]
    assert unit_a.read_bytes() == b"broken\n"
    assert len(result["backups"]) == 1


def test_unknown_name_lists_the_backups(host, capsys):
    saved = run(capsys, **args(host))
    result = run(capsys, **args(host, state="restored", name="20200101T000000.000000Z"))
    assert result["failed"] is True
    assert result["msg"] == (
        f"no backup named '20200101T000000.000000Z' under {host['root']}; the backups are: {saved['backup']}"
    )


def test_nothing_to_restore(host, capsys):
    result = run(capsys, **args(host, state="restored"))
    assert result["failed"] is True
    assert result["msg"] == f"there is no backup under {host['root']} to restore"


def test_a_damaged_backup_is_refused_before_anything_changes(host, capsys):
    saved = run(capsys, **args(host))
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    unit_a.write_bytes(b"current\n")
    (Path(saved["path"]) / "files" / str(unit_a).lstrip("/")).write_bytes(b"tampered\n")

    result = run(capsys, **args(host, state="restored"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"backup {saved['backup']} is damaged: its copy of {unit_a} is missing or does not match the manifest's "
        "sha256; nothing was restored. Restore another backup (name=...)."
    )
    assert unit_a.read_bytes() == b"current\n"


def test_keeps_the_newest_backups(host, capsys):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    names = []
    for version in range(4):
        unit_a.write_bytes(f"version {version}\n".encode())
        names.append(run(capsys, **args(host, keep=2))["backup"])
    listing = run(capsys, **args(host, keep=2))["backups"]
    assert [entry["name"] for entry in listing] == [names[3], names[2]]


def test_relative_patterns_are_refused(host, capsys):
    result = run(capsys, root=host["root"], paths=["systemd/*.service"])
    assert result["failed"] is True
    assert result["msg"] == "paths must be absolute glob patterns; not absolute: systemd/*.service"


def test_keep_below_one_is_refused(host, capsys):
    result = run(capsys, **args(host, keep=0))
    assert result["failed"] is True
    assert result["msg"] == "keep must be 1 or more (got 0): the newest backup is always kept."
