"""The collection builds, installs, keeps dev files out, and ansible-doc shows every plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLUGIN_DIRS = {"modules": "module", "filter": "filter"}
# Never in the tarball: development files, and anything that may hold a secret or a lab's details.
KEPT_OUT = {"inventories", "reports", ".cache", "molecule", "tests", "scripts", "lab", ".ci"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("build")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(TOP)],
        check=True,
        capture_output=True,
        text=True,
    )
    tarball = next(out.glob("labai-llm_stack-*.tar.gz"))
    dest = out / "collections"
    subprocess.run(
        [
            str(BIN / "ansible-galaxy"),
            *("collection", "install", "--offline", "--force", "-p"),
            str(dest),
            str(tarball),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    with tarfile.open(tarball) as tf:
        names = tf.getnames()
    return {
        "tarball": tarball,
        "names": names,
        "path": dest / "ansible_collections" / "labai" / "llm_stack",
        "collections": dest,
    }


def leaked(names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if name.split("/")[0] in KEPT_OUT or "reports" in name.split("/") or "secrets" in name.lower()
    ]


def test_build_keeps_development_files_out(installed: dict) -> None:
    assert leaked(installed["names"]) == []


def test_build_keeps_inventories_reports_and_secrets_out(tmp_path: Path) -> None:
    """A copy of the tree with every kind of file that must stay out, wherever the build could pick one up."""
    source = tmp_path / "src"
    shutil.copytree(
        TOP,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", ".venv", ".collections", ".cache", "__pycache__", "*.tar.gz"),
    )
    planted = [
        "inventories/example/group_vars/all/secrets.yml",
        "inventories/site/hosts.yml",
        "reports/site-20260101T000000Z.json",
        "roles/vllm/reports/last.md",
        "playbooks/reports/run.json",
        ".cache/reports/site.json",
        ".cache/lab/key",
        "playbooks/vars/secrets.yml",
        "roles/litellm/files/lab-secrets.env",
        "molecule/default/molecule.yml",
        "tests/unit/test_x.py",
    ]
    for name in planted:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("sk-planted-secret\n", encoding="utf-8")
    out = tmp_path / "out"
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    with tarfile.open(next(out.glob("labai-llm_stack-*.tar.gz"))) as tf:
        names = tf.getnames()
        contents = [tf.extractfile(member).read() for member in tf.getmembers() if member.isfile()]
    assert "roles/vllm/templates/unit.service.j2" in names
    assert leaked(names) == []
    assert not [content for content in contents if b"sk-planted-secret" in content]


def test_installed_collection_has_roles_and_playbooks(installed: dict) -> None:
    path = installed["path"]
    assert (path / "roles" / "service_account" / "meta" / "argument_specs.yml").is_file()
    assert (path / "playbooks" / "preflight.yml").is_file()


def test_ansible_doc_shows_every_plugin(installed: dict) -> None:
    plugins = [
        (doc_type, f"labai.llm_stack.{p.stem}")
        for directory, doc_type in PLUGIN_DIRS.items()
        for p in sorted((TOP / "plugins" / directory).glob("*.py"))
        if not p.name.startswith("_")
    ]
    assert ("filter", "labai.llm_stack.plan") in plugins
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(installed["collections"])}
    for doc_type, fqcn in plugins:
        result = subprocess.run(
            [str(BIN / "ansible-doc"), "-t", doc_type, fqcn],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 0 and fqcn in result.stdout, f"ansible-doc {fqcn}:\n{result.stderr}"
