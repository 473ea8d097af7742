"""The collection builds, installs, keeps dev files out, and ansible-doc shows every plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLUGIN_DIRS = {"modules": "module", "filter": "filter"}


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


def test_build_keeps_development_files_out(installed: dict) -> None:
    leaked = [n for n in installed["names"] if n.split("/")[0] in {"tests", "molecule", "scripts", "lab", ".ci"}]
    assert leaked == []


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
