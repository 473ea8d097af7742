# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment_backup module on real files: saved once per content, restored byte for byte."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from ansible_collections.labai.llm_stack.plugins.module_utils import file_backups
from ansible_collections.labai.llm_stack.plugins.modules import deployment_backup
from module_runner import run_host_module


def run(capsys: pytest.CaptureFixture, check_mode: bool = False, **args) -> dict:
    return run_host_module(deployment_backup.main, args, capsys, check_mode=check_mode)


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
        f"no backup named '20200101T000000.000000Z' under {host['root']}; the backups are: "
        f"{saved['backup']} (deployment)"
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


VALIDATED = "validated deployment"


def test_a_restore_takes_the_newest_validated_backup_not_the_files_of_a_deploy_cut_short(host, capsys):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    validated = run(capsys, **args(host, label=VALIDATED))
    # A deploy rendered a new unit and was killed; the next deploy backed that up before it failed.
    unit_a.write_bytes(b"half-deployed\n")
    half = run(capsys, **args(host, label="before deploy"))
    unit_a.write_bytes(b"failed validation\n")

    result = run(capsys, **args(host, state="restored", validated_label=VALIDATED))

    assert half["created"] and result["backup"] == validated["backup"]
    assert unit_a.read_bytes() == b"[Service]\nExecStart=/bin/a\n"
    # Without the label, the newest backup of any label, as before.
    unit_a.write_bytes(b"failed validation\n")
    assert run(capsys, **args(host, state="restored"))["backup"] == half["backup"]


def test_a_restore_with_no_validated_backup_fails_and_changes_nothing(host, capsys):
    first = run(capsys, **args(host, label="before deploy"))
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    unit_a.write_bytes(b"failed validation\n")
    result = run(capsys, **args(host, state="restored", validated_label=VALIDATED))
    assert result["failed"] is True
    assert result["msg"] == (
        f"there is no backup labelled 'validated deployment' under {host['root']}, so no deployment of this host "
        "was ever validated to go back to; nothing was restored. Restore one by name if you must; the backups are: "
        f"{first['backup']} (before deploy)"
    )
    assert unit_a.read_bytes() == b"failed validation\n"


def test_pruning_keeps_the_newest_validated_backup_however_many_came_after(host, capsys):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    validated = run(capsys, **args(host, label=VALIDATED, validated_label=VALIDATED, keep=2))
    names = []
    for attempt in range(3):
        unit_a.write_bytes(f"failed attempt {attempt}\n".encode())
        names.append(run(capsys, **args(host, label="before deploy", validated_label=VALIDATED, keep=2))["backup"])
    listing = run(capsys, **args(host, validated_label=VALIDATED, keep=2))["backups"]
    assert [entry["name"] for entry in listing] == [names[2], names[1], validated["backup"]]


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


# What lies under the backup root is untrusted: backups written by hand, as a compromised service could.

LATER = "20991231T235959.999999Z"
EARLIER = "20000101T000000.000000Z"


def craft(host: dict, name: str, files: list[tuple[str, bytes, str]], /, **manifest) -> str:
    """A backup directory ROOT/name holding a copy of each (path, content, mode) and a manifest that lists them;
    manifest overrides its keys (name, kind, ...)."""
    directory = os.path.join(host["root"], name)
    entries = []
    for path, content, mode in files:
        copy = os.path.join(directory, "files", path.lstrip("/"))
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        Path(copy).write_bytes(content)
        entries.append(
            {"path": path, "sha256": hashlib.sha256(content).hexdigest(), "mode": mode, "size": len(content)}
        )
    os.makedirs(directory, exist_ok=True)
    body = {"name": name, "kind": "deployment", "label": "", "created": "2099-12-31T23:59:59Z", "files": entries}
    Path(directory, "manifest.json").write_text(json.dumps(body | manifest))
    return directory


def skipped(directory: str, why: str) -> str:
    return f"{directory} is not a usable backup and was skipped: {why}"


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any restore outside the test's directory fails the test instead of writing there."""
    write = file_backups._write_atomically

    def inside_only(source: str, dest: str, mode: str) -> None:
        assert os.path.abspath(dest).startswith(f"{tmp_path}/"), f"the restore wrote {dest}"
        write(source, dest, mode)

    monkeypatch.setattr(file_backups, "_write_atomically", inside_only)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("20261126T071502.123456Z", True),
        ("../../victim", False),
        ("20261126T071502Z", False),
        ("20261126T071502.123Z", False),
        ("2026112T071502.123456Z", False),
        ("20261326T071502.123456Z", False),
        ("20261126T071502.123456Z/..", False),
        (".saving-abc123", False),
    ],
)
def test_a_backup_name_is_a_timestamp_as_the_module_writes_it(name, valid):
    assert file_backups.is_backup_name(name) is valid


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        ("/s/llm-a.service", "/s/llm-*.service", True),
        ("/s/llm-x/y.service", "/s/llm-*.service", False),
        ("/s/.llm-a.service", "/s/*.service", False),
        ("/s/.hidden.env", "/s/.*.env", True),
        ("/s/a.env", "/s/[ab].env", True),
        ("/s/sub/a.env", "/s/*/a.env", True),
    ],
)
def test_restored_paths_match_patterns_as_glob_does(path, pattern, matches):
    assert file_backups.glob_matches(path, pattern) is matches


def test_a_manifest_naming_a_directory_outside_the_root_is_skipped_and_never_pruned(host, capsys):
    host = host | {"root": str(host["dir"] / "state" / "backups")}
    victim = host["dir"] / "victim"
    victim.mkdir()
    (victim / "precious").write_bytes(b"keep me\n")
    crafted = craft(host, EARLIER, [], name="../../victim")

    result = run(capsys, **args(host, keep=1))

    assert result["created"] is True
    assert (victim / "precious").read_bytes() == b"keep me\n"
    assert os.path.isdir(crafted)
    assert result["pruned"] == []
    assert [entry["name"] for entry in result["backups"]] == [result["backup"]]
    assert result["warned"] == [
        skipped(crafted, f"its manifest.json names it '../../victim', not '{EARLIER}' (its directory)")
    ]


def test_a_symbolic_link_in_place_of_a_backup_directory_is_skipped_and_its_target_kept(host, capsys):
    elsewhere = host["dir"] / "elsewhere"
    outside = craft({"root": str(elsewhere)}, EARLIER, [])
    link = os.path.join(host["root"], EARLIER)
    os.makedirs(host["root"])
    os.symlink(outside, link)

    result = run(capsys, **args(host, keep=1))

    assert result["pruned"] == []
    assert os.path.islink(link)
    assert os.path.isfile(os.path.join(outside, "manifest.json"))
    assert result["warned"] == [skipped(link, "it is a symbolic link, not a backup directory")]


@pytest.mark.parametrize("name", ["not-a-timestamp", "20261126T071502Z"])
def test_a_directory_not_named_by_a_timestamp_is_not_a_backup(host, capsys, name):
    crafted = craft(host, name, [])
    result = run(capsys, **args(host, keep=1))
    assert [entry["name"] for entry in result["backups"]] == [result["backup"]]
    assert os.path.isdir(crafted)
    assert result["warned"] == [skipped(crafted, "its name is not a backup timestamp (%Y%m%dT%H%M%S.%fZ)")]


NOT_NORMALISED = "is not a normalised path (it holds '.', '..', '//' or a trailing '/')"


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ([("/etc/passwd", "0644")], "/etc/passwd matches none of paths"),
        ([("{d}/systemd/other.service", "0644")], "{d}/systemd/other.service matches none of paths"),
        ([("{d}/systemd/llm-x/y.service", "0644")], "{d}/systemd/llm-x/y.service matches none of paths"),
        ([("{d}/systemd/../systemd/llm-a.service", "0644")], "{d}/systemd/../systemd/llm-a.service " + NOT_NORMALISED),
        ([("{d}/systemd//llm-a.service", "0644")], "{d}/systemd//llm-a.service " + NOT_NORMALISED),
        ([("systemd/llm-a.service", "0644")], "systemd/llm-a.service is not an absolute path"),
        (
            [("{d}/systemd/llm-a.service", "4755")],
            "{d}/systemd/llm-a.service has mode '4755': modes above 0777 (setuid, setgid, sticky) and other values "
            "are refused",
        ),
        (
            [("{d}/systemd/llm-a.service", "0644"), ("{d}/systemd/llm-a.service", "0600")],
            "{d}/systemd/llm-a.service is listed twice",
        ),
    ],
)
def test_a_restore_refuses_a_backup_that_writes_outside_paths_or_sets_special_modes(
    host, capsys, guarded, files, problem
):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    other = host["dir"] / "systemd" / "other.service"
    craft(host, LATER, [(path.format(d=host["dir"]), b"evil\n", mode) for path, mode in files])

    result = run(capsys, **args(host, state="restored"))

    assert result["failed"] is True
    assert result["msg"] == (
        f"backup {LATER} is refused: {problem.format(d=host['dir'])}; nothing was restored. "
        "Restore another backup (name=...)."
    )
    assert unit_a.read_bytes() == b"[Service]\nExecStart=/bin/a\n"
    assert unit_a.stat().st_mode & 0o7777 == 0o644
    assert other.read_bytes() == b"not ours\n"


def test_a_restore_refuses_a_copy_behind_a_symbolic_link(host, capsys, guarded):
    unit_a = str(host["dir"] / "systemd" / "llm-a.service")
    outside = host["dir"] / "outside"
    outside.write_bytes(b"evil\n")
    crafted = craft(host, LATER, [(unit_a, b"evil\n", "0644")])
    copy = os.path.join(crafted, "files", unit_a.lstrip("/"))
    os.unlink(copy)
    os.symlink(outside, copy)

    result = run(capsys, **args(host, state="restored"))

    assert result["msg"] == (
        f"backup {LATER} is damaged: its copy of {unit_a} is a symbolic link or lies under one; nothing was "
        "restored. Restore another backup (name=...)."
    )
    assert Path(unit_a).read_bytes() == b"[Service]\nExecStart=/bin/a\n"


def test_a_truncated_manifest_is_skipped_and_the_newest_good_backup_used(host, capsys):
    good = run(capsys, **args(host))
    broken = craft(host, LATER, [])
    manifest = Path(broken, "manifest.json")
    manifest.write_text(manifest.read_text()[:40])
    warning = skipped(broken, "its manifest.json is not valid JSON (truncated?): ")

    again = run(capsys, **args(host))
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    unit_a.write_bytes(b"broken\n")
    restored = run(capsys, **args(host, state="restored"))

    assert again["created"] is False and again["backup"] == good["backup"]
    assert restored["backup"] == good["backup"]
    assert unit_a.read_bytes() == b"[Service]\nExecStart=/bin/a\n"
    for result in (again, restored):
        assert len(result["warned"]) == 1 and result["warned"][0].startswith(warning)


def test_a_staging_directory_left_by_a_failed_save_is_skipped_and_removed_by_the_next_save(host, capsys):
    good = run(capsys, **args(host))
    staging = Path(host["root"], ".saving-k2j4h1")
    (staging / "files").mkdir(parents=True)
    (staging / "manifest.json").write_text('{"name": "')

    listed = run(capsys, check_mode=True, **args(host, state="restored"))
    would = run(capsys, check_mode=True, **args(host))
    assert staging.is_dir()
    cleaned = run(capsys, **args(host))
    again = run(capsys, **args(host))

    assert [entry["name"] for entry in listed["backups"]] == [good["backup"]]
    assert listed["warned"] == []
    assert (would["changed"], would["cleaned"]) == (True, [".saving-k2j4h1"])
    assert (cleaned["changed"], cleaned["created"], cleaned["cleaned"]) == (True, False, [".saving-k2j4h1"])
    assert not staging.exists()
    assert (again["changed"], again["cleaned"]) == (False, [])


def test_a_full_disk_while_saving_fails_clearly_and_leaves_no_staging_directory(host, capsys, monkeypatch):
    def disk_full(source, dest, **_):
        raise OSError(errno.ENOSPC, "No space left on device", dest)

    monkeypatch.setattr(file_backups.shutil, "copy2", disk_full)
    result = run(capsys, **args(host))

    assert result["failed"] is True
    assert re.fullmatch(
        rf"cannot save backup \S+ under {re.escape(host['root'])}: \[Errno 28\] No space left on device: "
        rf"'{re.escape(host['root'])}/\.saving-\w+/files/\S+'",
        result["msg"],
    )
    assert os.listdir(host["root"]) == []
    monkeypatch.undo()
    assert run(capsys, **args(host))["created"] is True


def test_an_unreadable_managed_file_fails_clearly(host, capsys, monkeypatch):
    env_a = str(host["dir"] / "env" / "a.env")

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(file_backups, "_sha256", denied)
    result = run(capsys, **args(host))
    assert result["failed"] is True
    assert result["msg"] == f"cannot read {env_a}: [Errno 13] Permission denied: '{env_a}'"


def test_a_failing_restore_says_what_it_had_done(host, capsys, monkeypatch):
    saved = run(capsys, **args(host))
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    unit_a.write_bytes(b"broken\n")

    def disk_full(source, dest):
        raise OSError(errno.ENOSPC, "No space left on device", source, None, dest)

    monkeypatch.setattr(file_backups.os, "replace", disk_full)
    result = run(capsys, **args(host, state="restored"))

    assert result["failed"] is True
    assert result["msg"].startswith(f"restoring backup {saved['backup']} stopped: [Errno 28] No space left on device: ")
    assert result["msg"].endswith(f" -> '{unit_a}'; already restored or removed: nothing")
    assert unit_a.read_bytes() == b"broken\n"
    assert not [name for name in os.listdir(unit_a.parent) if name.startswith(".restore-")]


def test_a_failing_prune_fails_clearly(host, capsys, monkeypatch):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    first = run(capsys, **args(host))["backup"]
    unit_a.write_bytes(b"second\n")

    def denied(path, *_, **__):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(file_backups.shutil, "rmtree", denied)
    result = run(capsys, **args(host, keep=1))
    path = os.path.join(host["root"], first)
    assert result["msg"] == f"cannot remove {path}: [Errno 13] Permission denied: '{path}'"


def test_a_root_that_is_a_file_fails_clearly(host, capsys):
    Path(host["root"]).write_bytes(b"")
    result = run(capsys, **args(host))
    assert result["msg"] == f"cannot create a backup under {host['root']}: [Errno 17] File exists: '{host['root']}'"


def test_a_save_refuses_files_a_restore_would_refuse(host, capsys):
    unit_a = host["dir"] / "systemd" / "llm-a.service"
    os.chmod(unit_a, 0o4755)
    result = run(capsys, **args(host))
    assert result["msg"] == (
        f"refusing to back up files with setuid, setgid or sticky bits, which a restore refuses: {unit_a} (4755)"
    )
