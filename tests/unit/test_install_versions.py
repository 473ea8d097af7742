# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The install_versions module on real directories: the versions in use, named by a unit or newest are kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.labai.llm_stack.plugins.modules import install_versions
from module_runner import run_module

VENVS = r"^venv(-[0-9a-f]{12})?$"


def run(capsys: pytest.CaptureFixture, check_mode: bool = False, **args) -> dict:
    return run_module(install_versions.main, args, capsys, check_mode=check_mode)


def version(root: Path, name: str, age: int) -> Path:
    """A version directory with a file in it, last changed ``age`` hours ago."""
    path = root / name
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("#!/bin/sh\n")
    stamp = 1_800_000_000 - age * 3600
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def host(tmp_path: Path) -> dict:
    """Five virtualenvs (a the newest, e the oldest, the unversioned one older still) and a unit naming d."""
    root = tmp_path / "vllm"
    paths = {name: version(root, f"venv-{name * 12}", age) for age, name in enumerate("abcde", start=1)}
    paths["legacy"] = version(root, "venv", 10)
    (root / "check_config.py").write_text("not a version\n")
    (root / "venv-notaversion").mkdir()
    units = tmp_path / "systemd"
    units.mkdir()
    (units / "llm-vllm-x.service").write_text(f'[Service]\nExecStart="{paths["d"]}/bin/python" "-m" "vllm"\n')
    (units / "other.service").write_text(f"ExecStart={paths['e']}/bin/python\n")
    return {"root": root, "paths": paths, "units": units}


def args(host: dict, **more) -> dict:
    return {
        "root": str(host["root"]),
        "pattern": VENVS,
        "in_use": [str(host["paths"]["b"])],
        "referenced_by": [f"{host['units']}/llm-*.service"],
        **more,
    }


def left(host: dict) -> list[str]:
    return sorted(path.name for path in host["root"].iterdir())


def test_keeps_the_one_in_use_the_one_a_unit_names_and_the_newest_others(host, capsys):
    result = run(capsys, **args(host, keep=1))
    assert result["changed"] is True
    assert [(entry["name"], entry["kept"]) for entry in result["versions"]] == [
        ("venv-aaaaaaaaaaaa", "newest"),
        ("venv-bbbbbbbbbbbb", "in use"),
        ("venv-cccccccccccc", None),
        ("venv-dddddddddddd", "named by a unit"),
        ("venv-eeeeeeeeeeee", None),
        ("venv", None),
    ]
    paths = host["paths"]
    assert result["removed"] == [str(paths["c"]), str(paths["e"]), str(paths["legacy"])]
    assert left(host) == [
        "check_config.py",
        "venv-aaaaaaaaaaaa",
        "venv-bbbbbbbbbbbb",
        "venv-dddddddddddd",
        "venv-notaversion",
    ]


def test_a_second_run_changes_nothing(host, capsys):
    run(capsys, **args(host, keep=1))
    second = run(capsys, **args(host, keep=1))
    assert second["changed"] is False
    assert second["removed"] == []


def test_keep_counts_neither_the_one_in_use_nor_those_a_unit_names(host, capsys):
    result = run(capsys, **args(host, keep=2))
    assert [Path(path).name for path in result["removed"]] == ["venv-eeeeeeeeeeee", "venv"]


def test_keep_zero_leaves_only_the_one_in_use_and_those_a_unit_names(host, capsys):
    run(capsys, **args(host, keep=0))
    assert left(host) == ["check_config.py", "venv-bbbbbbbbbbbb", "venv-dddddddddddd", "venv-notaversion"]


def test_check_mode_removes_nothing(host, capsys):
    before = left(host)
    result = run(capsys, check_mode=True, **args(host, keep=1))
    assert result["changed"] is True
    assert [Path(path).name for path in result["removed"]] == ["venv-cccccccccccc", "venv-eeeeeeeeeeee", "venv"]
    assert left(host) == before
    assert result["diff"]["after"] == "venv-aaaaaaaaaaaa\nvenv-bbbbbbbbbbbb\nvenv-dddddddddddd\n"


def test_a_path_named_as_the_start_of_another_does_not_count(host, capsys):
    """The legacy venv is a prefix of every venv-<key>: a unit naming venv-dddd... does not name it."""
    result = run(capsys, **args(host, keep=0))
    assert str(host["paths"]["legacy"]) in result["removed"]


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('ExecStart="/r/venv-aaaaaaaaaaaa/bin/python" "-m" "x"', True),
        ("ExecStart=/r/venv-aaaaaaaaaaaa/bin/python -m x", True),
        ("WorkingDirectory=/r/venv-aaaaaaaaaaaa", True),
        ("X='/r/venv-aaaaaaaaaaaa' y", True),
        ("ExecStart=/r/venv-aaaaaaaaaaaab/bin/python", False),
        ("ExecStart=/r/venv-aaaaaaaaaaaa.old/bin/python", False),
        ("ExecStart=/other/r/venv-aaaaaaaaaaaa/bin/python", True),
        ("", False),
    ],
)
def test_what_names_a_path(text, named):
    assert install_versions.names_path(text, "/r/venv-aaaaaaaaaaaa") is named


def test_a_path_as_systemd_quotes_it_is_named():
    assert install_versions.names_path('ExecStart="/home/a%%b/venv-x/bin/python"', "/home/a%b/venv-x")


def test_companions_go_with_their_version_and_stay_with_a_kept_one(tmp_path, capsys):
    root = tmp_path / "ollama"
    old = version(root, "0.12.0-aaaaaaaaaaaa", 3)
    version(root, "0.13.5-bbbbbbbbbbbb", 1)
    (root / "archives").mkdir()
    for name in ("0.12.0-aaaaaaaaaaaa", "0.13.5-bbbbbbbbbbbb"):
        (root / "archives" / f"ollama-{name}.tgz").write_bytes(b"archive")
    result = run(
        capsys,
        root=str(root),
        pattern=r"^(current|.+-[0-9a-fA-F]{12})$",
        in_use=[str(root / "0.13.5-bbbbbbbbbbbb")],
        keep=0,
        companions=[f"{root}/archives/ollama-{{name}}.tgz"],
    )
    assert result["removed"] == [str(old), str(root / "archives" / "ollama-0.12.0-aaaaaaaaaaaa.tgz")]
    assert sorted(path.name for path in (root / "archives").iterdir()) == ["ollama-0.13.5-bbbbbbbbbbbb.tgz"]
    assert sorted(path.name for path in root.iterdir()) == ["0.13.5-bbbbbbbbbbbb", "archives"]


def test_a_link_is_removed_never_followed(tmp_path, capsys):
    """The 'current' link of earlier releases: unlinked once no unit names it, its target left alone."""
    root = tmp_path / "ollama"
    release = version(root, "0.13.5-bbbbbbbbbbbb", 1)
    (root / "current").symlink_to(release)
    units = tmp_path / "systemd"
    units.mkdir()
    unit = units / "llm-ollama.service"
    unit.write_text(f'ExecStart="{root}/current/bin/ollama" "serve"\n')
    common = {
        "root": str(root),
        "pattern": r"^(current|.+-[0-9a-fA-F]{12})$",
        "in_use": [str(release)],
        "referenced_by": [f"{units}/llm-*.service"],
        "keep": 0,
    }

    named = run(capsys, **common)
    assert named["changed"] is False
    assert [(entry["name"], entry["kept"]) for entry in named["versions"]][-1] == ("current", "named by a unit")

    unit.write_text(f'ExecStart="{release}/bin/ollama" "serve"\n')
    result = run(capsys, **common)
    assert result["removed"] == [str(root / "current")]
    assert not os.path.lexists(root / "current")
    assert (release / "bin" / "python").is_file()


def test_a_link_a_unit_names_keeps_the_version_it_leads_to(tmp_path, capsys):
    """Units of earlier releases run Ollama through 'current': the release behind it stays while they do."""
    root = tmp_path / "ollama"
    behind = version(root, "0.12.0-aaaaaaaaaaaa", 3)
    version(root, "0.13.0-cccccccccccc", 2)
    release = version(root, "0.13.5-bbbbbbbbbbbb", 1)
    (root / "current").symlink_to(behind)
    units = tmp_path / "systemd"
    units.mkdir()
    (units / "llm-ollama.service").write_text(f'ExecStart="{root}/current/bin/ollama" "serve"\n')
    result = run(
        capsys,
        root=str(root),
        pattern=r"^(current|.+-[0-9a-fA-F]{12})$",
        in_use=[str(release)],
        referenced_by=[f"{units}/llm-*.service"],
        keep=0,
    )
    assert result["removed"] == [str(root / "0.13.0-cccccccccccc")]
    assert {entry["name"]: entry["kept"] for entry in result["versions"]} == {
        "0.13.5-bbbbbbbbbbbb": "in use",
        "0.13.0-cccccccccccc": None,
        "0.12.0-aaaaaaaaaaaa": "named by a unit",
        "current": "named by a unit",
    }


def test_a_companion_that_is_a_directory_is_left(tmp_path, capsys):
    root = tmp_path / "r"
    version(root, "venv-aaaaaaaaaaaa", 2)
    (tmp_path / "extra-venv-aaaaaaaaaaaa").mkdir()
    result = run(capsys, root=str(root), pattern=VENVS, keep=0, companions=[f"{tmp_path}/extra-{{name}}"])
    assert result["removed"] == [str(root / "venv-aaaaaaaaaaaa")]
    assert (tmp_path / "extra-venv-aaaaaaaaaaaa").is_dir()


def test_a_missing_root_has_nothing_to_remove(tmp_path, capsys):
    result = run(capsys, root=str(tmp_path / "none"), pattern=VENVS)
    assert result["changed"] is False
    assert result["versions"] == []


def test_a_regular_file_named_like_a_version_is_left(tmp_path, capsys):
    root = tmp_path / "r"
    root.mkdir()
    (root / "venv-aaaaaaaaaaaa").write_text("a file\n")
    assert run(capsys, root=str(root), pattern=VENVS, keep=0)["versions"] == []
    assert (root / "venv-aaaaaaaaaaaa").is_file()


def test_a_negative_keep_is_refused(tmp_path, capsys):
    result = run(capsys, root=str(tmp_path), pattern=VENVS, keep=-1)
    assert result["failed"] is True
    assert result["msg"] == "keep must be 0 or more (got -1)."


def test_a_removal_that_fails_names_the_path(host, capsys, monkeypatch):
    refused = host["paths"]["c"] / "bin" / "python"

    def rmtree(path: str) -> None:
        raise PermissionError(13, "Permission denied", str(refused))

    monkeypatch.setattr(install_versions.shutil, "rmtree", rmtree)
    result = run(capsys, **args(host, keep=1))
    assert result["failed"] is True
    assert result["msg"] == f"install_versions failed on {refused}: Permission denied"
    assert (host["paths"]["c"]).is_dir()
