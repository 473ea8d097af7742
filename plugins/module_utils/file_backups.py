# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a set of files (glob patterns) as directories with a manifest, restored byte for byte."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from datetime import UTC, datetime

DEPLOYMENT = "deployment"
BEFORE_RESTORE = "before-restore"


class BackupError(Exception):
    """A backup that cannot be read or restored; the message says which and why."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: str) -> dict:
    info = os.stat(path)
    return {"path": path, "sha256": _sha256(path), "mode": f"{stat.S_IMODE(info.st_mode):04o}", "size": info.st_size}


def _write_atomically(source: str, dest: str, mode: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".restore-")
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        os.chmod(tmp, int(mode, 8))
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class BackupStore:
    """The backups under one root of the files matching some glob patterns."""

    def __init__(self, root: str, patterns: list[str], dry_run: bool = False) -> None:
        relative = [pattern for pattern in patterns if not os.path.isabs(pattern)]
        if relative:
            raise BackupError(f"paths must be absolute glob patterns; not absolute: {', '.join(relative)}")
        self.root = root
        self.patterns = patterns
        self.dry_run = dry_run
        # The backup just saved or restored: pruning never deletes it.
        self._protected = ""

    def current(self) -> list[dict]:
        found = sorted({path for pattern in self.patterns for path in glob.glob(pattern) if os.path.isfile(path)})
        return [_describe(path) for path in found]

    def manifests(self) -> list[dict]:
        """Every readable backup, newest first."""
        if not os.path.isdir(self.root):
            return []
        found = []
        for name in os.listdir(self.root):
            manifest = os.path.join(self.root, name, "manifest.json")
            if os.path.isfile(manifest):
                with open(manifest, encoding="utf-8") as handle:
                    found.append(json.load(handle))
        return sorted(found, key=lambda entry: entry["name"], reverse=True)

    def listing(self) -> list[dict]:
        return [
            {key: entry[key] for key in ("name", "kind", "label", "created")} | {"files": len(entry["files"])}
            for entry in self.manifests()
        ]

    def _newest(self, kind: str) -> dict | None:
        return next((entry for entry in self.manifests() if entry["kind"] == kind), None)

    def _new_name(self) -> str:
        # Microseconds keep names unique and in creation order, even for saves within one second.
        name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        while os.path.exists(os.path.join(self.root, name)):
            time.sleep(0.000001)
            name = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        return name

    def _save(self, files: list[dict], kind: str, label: str) -> dict:
        name = self._new_name()
        path = os.path.join(self.root, name)
        manifest = {
            "name": name,
            "kind": kind,
            "label": label,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "patterns": self.patterns,
            "files": files,
        }
        if not self.dry_run:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            staging = tempfile.mkdtemp(dir=self.root, prefix=".saving-")
            for entry in files:
                copy = os.path.join(staging, "files", entry["path"].lstrip("/"))
                os.makedirs(os.path.dirname(copy), exist_ok=True)
                shutil.copy2(entry["path"], copy)
            with open(os.path.join(staging, "manifest.json"), "w", encoding="utf-8") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
            os.rename(staging, path)
        return {"backup": name, "path": path, "files": files}

    def save(self, label: str = "") -> dict:
        """Save the current files, unless the newest deployment backup holds exactly them."""
        files = self.current()
        newest = self._newest(DEPLOYMENT)
        if newest is not None and self._same(newest["files"], files):
            self._protected = newest["name"]
            return {
                "backup": newest["name"],
                "path": os.path.join(self.root, newest["name"]),
                "files": files,
                "created": False,
            }
        saved = self._save(files, DEPLOYMENT, label)
        self._protected = saved["backup"]
        return saved | {"created": True}

    @staticmethod
    def _same(saved: list[dict], current: list[dict]) -> bool:
        def key(entries):
            return sorted((entry["path"], entry["sha256"], entry["mode"]) for entry in entries)

        return key(saved) == key(current)

    def _chosen(self, name: str) -> dict:
        manifests = self.manifests()
        if name:
            chosen = next((entry for entry in manifests if entry["name"] == name), None)
            if chosen is None:
                known = ", ".join(entry["name"] for entry in manifests) or "none"
                raise BackupError(f"no backup named '{name}' under {self.root}; the backups are: {known}")
            return chosen
        chosen = self._newest(DEPLOYMENT)
        if chosen is None:
            raise BackupError(f"there is no backup under {self.root} to restore")
        return chosen

    def _verified_copies(self, backup: dict) -> dict[str, str]:
        """The stored copy of each file, after checking it still has the checksum the manifest recorded."""
        copies = {}
        for entry in backup["files"]:
            copy = os.path.join(self.root, backup["name"], "files", entry["path"].lstrip("/"))
            if not os.path.isfile(copy) or _sha256(copy) != entry["sha256"]:
                raise BackupError(
                    f"backup {backup['name']} is damaged: its copy of {entry['path']} is missing or does not match "
                    f"the manifest's sha256; nothing was restored. Restore another backup (name=...)."
                )
            copies[entry["path"]] = copy
        return copies

    def restore(self, name: str = "") -> dict:
        backup = self._chosen(name)
        copies = self._verified_copies(backup)
        current = {entry["path"]: entry for entry in self.current()}
        to_write = [
            entry
            for entry in backup["files"]
            if entry["path"] not in current
            or (current[entry["path"]]["sha256"], current[entry["path"]]["mode"]) != (entry["sha256"], entry["mode"])
        ]
        wanted = {entry["path"] for entry in backup["files"]}
        to_remove = sorted(path for path in current if path not in wanted)
        touched = [current[entry["path"]] for entry in to_write if entry["path"] in current]
        touched += [current[path] for path in to_remove]
        saved = (
            self._save(
                sorted(touched, key=lambda e: e["path"]), BEFORE_RESTORE, f"replaced by restoring {backup['name']}"
            )
            if touched
            else None
        )
        if not self.dry_run:
            for entry in to_write:
                _write_atomically(copies[entry["path"]], entry["path"], entry["mode"])
            for path in to_remove:
                os.unlink(path)
        self._protected = backup["name"]
        return {
            "backup": backup["name"],
            "path": os.path.join(self.root, backup["name"]),
            "files": backup["files"],
            "created": False,
            "restored": [entry["path"] for entry in to_write],
            "removed": to_remove,
            "saved_before_restore": saved["backup"] if saved else "",
        }

    def prune(self, keep: int) -> list[str]:
        """Delete the oldest backups beyond keep of each kind; the one just saved or restored stays."""
        doomed = []
        for kind in (DEPLOYMENT, BEFORE_RESTORE):
            of_kind = [entry["name"] for entry in self.manifests() if entry["kind"] == kind]
            doomed += [name for name in of_kind[keep:] if name != self._protected]
        if not self.dry_run:
            for name in doomed:
                shutil.rmtree(os.path.join(self.root, name))
        return doomed
