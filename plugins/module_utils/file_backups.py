# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a set of files (glob patterns) as directories with a manifest, restored byte for byte.

What lies under the backup root is treated as untrusted: a backup is used only when its directory is a real
directory named by a timestamp, its manifest parses and names that directory, and (to be restored) every file
it lists is a normalised absolute path that the patterns match, with a mode of at most 0777.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

DEPLOYMENT = "deployment"
BEFORE_RESTORE = "before-restore"
KINDS = (DEPLOYMENT, BEFORE_RESTORE)
# A backup's name, and its directory's: the UTC time it was saved, to the microsecond.
NAME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
# The directory a save fills before renaming it to the backup's name (left behind by a crash or a full disk).
STAGING_PREFIX = ".saving-"
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 8 << 20
SHA256 = re.compile(r"[0-9a-f]{64}")
MODE = re.compile(r"0[0-7]{3}")


class BackupError(Exception):
    """A backup that cannot be saved, read or restored; the message says which and why."""


class UnusableBackup(Exception):
    """An entry of the backup root that is not a backup this module can use; the message says why."""


@contextmanager
def os_errors(doing: str) -> Iterator[None]:
    """Turn an OSError into a BackupError that says what was being done (the OSError names the path)."""
    try:
        yield
    except OSError as exc:
        raise BackupError(f"cannot {doing}: {exc}") from exc


def is_backup_name(name: str) -> bool:
    """Whether name is a timestamp exactly as this module writes one."""
    try:
        return datetime.strptime(name, NAME_FORMAT).strftime(NAME_FORMAT) == name
    except ValueError:
        return False


def normalised_pattern(pattern: str) -> str:
    """The pattern with '//', '.' and trailing '/' removed, so the paths glob returns for it are normalised."""
    return "/" + os.path.normpath(pattern).lstrip("/")


def glob_matches(path: str, pattern: str) -> bool:
    """Whether glob.glob(pattern) can return path: one pattern part per path part, a wildcard never matching
    '/' nor a leading '.' (as glob does; no recursive '**')."""
    names, parts = path.split("/"), pattern.split("/")
    return len(names) == len(parts) and all(map(_part_matches, names, parts))


def _part_matches(name: str, part: str) -> bool:
    if name.startswith(".") and not part.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, part)


def path_problem(path: str, patterns: list[str]) -> str:
    """What makes path unfit to be restored ('' when nothing does)."""
    if "\0" in path:
        return "holds a NUL character"
    if not os.path.isabs(path):
        return "is not an absolute path"
    if "//" in path or os.path.normpath(path) != path:
        return "is not a normalised path (it holds '.', '..', '//' or a trailing '/')"
    if not any(glob_matches(path, pattern) for pattern in patterns):
        return "matches none of paths"
    return ""


def mode_problem(mode: str) -> str:
    """What makes mode unfit to be restored ('' when nothing does)."""
    if MODE.fullmatch(mode):
        return ""
    return f"has mode {mode!r}: modes above 0777 (setuid, setgid, sticky) and other values are refused"


def _entry_is_well_formed(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("path"), str)
        and isinstance(entry.get("sha256"), str)
        and SHA256.fullmatch(entry["sha256"]) is not None
        and isinstance(entry.get("mode"), str)
        and type(entry.get("size")) is int
        and entry["size"] >= 0
    )


def shape_problem(manifest: object, name: str) -> str:
    """What makes a parsed manifest unusable as backup name ('' when nothing does)."""
    if not isinstance(manifest, dict):
        return f"its {MANIFEST} does not hold a JSON object"
    if manifest.get("name") != name:
        return f"its {MANIFEST} names it {str(manifest.get('name'))[:80]!r}, not {name!r} (its directory)"
    if manifest.get("kind") not in KINDS:
        return f"its {MANIFEST} has kind {str(manifest.get('kind'))[:80]!r}, not one of {', '.join(KINDS)}"
    if not all(isinstance(manifest.get(key), str) for key in ("label", "created")):
        return f"its {MANIFEST} lacks a label or a created time"
    files = manifest.get("files")
    if not isinstance(files, list) or not all(map(_entry_is_well_formed, files)):
        return f"the files of its {MANIFEST} are not a list of entries with path, sha256, mode and size"
    return ""


def parse_manifest(path: str) -> object:
    """The JSON in the regular file path (never through a symbolic link, never a FIFO that would block)."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(handle, "rb") as manifest:
            if not stat.S_ISREG(os.fstat(manifest.fileno()).st_mode):
                raise UnusableBackup(f"its {MANIFEST} is not a regular file")
            raw = manifest.read(MANIFEST_MAX_BYTES + 1)
    except OSError as exc:
        raise UnusableBackup(f"its {MANIFEST} cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > MANIFEST_MAX_BYTES:
        raise UnusableBackup(f"its {MANIFEST} is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise UnusableBackup(f"its {MANIFEST} is not valid JSON (truncated?): {exc}") from exc


def read_backup(directory: str) -> dict:
    """The manifest of the backup directory, checked; UnusableBackup says why there is none."""
    name = os.path.basename(directory)
    if os.path.islink(directory):
        raise UnusableBackup("it is a symbolic link, not a backup directory")
    if not os.path.isdir(directory):
        raise UnusableBackup("it is not a directory")
    if not is_backup_name(name):
        raise UnusableBackup(f"its name is not a backup timestamp ({NAME_FORMAT})")
    manifest = parse_manifest(os.path.join(directory, MANIFEST))
    problem = shape_problem(manifest, name)
    if problem:
        raise UnusableBackup(problem)
    return manifest


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(path: str) -> dict:
    with os_errors(f"read {path}"):
        info = os.stat(path)
        return {
            "path": path,
            "sha256": _sha256(path),
            "mode": f"{stat.S_IMODE(info.st_mode):04o}",
            "size": info.st_size,
        }


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
        self.patterns = [normalised_pattern(pattern) for pattern in patterns]
        self.dry_run = dry_run
        # The backup just saved or restored: pruning never deletes it.
        self._protected = ""
        # Entries of the root skipped as unusable, by path: why (reported once, as warnings).
        self.skipped: dict[str, str] = {}

    def current(self) -> list[dict]:
        found = sorted({path for pattern in self.patterns for path in glob.glob(pattern) if os.path.isfile(path)})
        return [_describe(path) for path in found]

    def _entries(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        with os_errors(f"list the backups in {self.root}"):
            return sorted(os.listdir(self.root))

    def _usable(self, name: str) -> dict | None:
        directory = os.path.join(self.root, name)
        try:
            return read_backup(directory)
        except UnusableBackup as exc:
            self.skipped[directory] = f"{directory} is not a usable backup and was skipped: {exc}"
            return None

    def manifests(self) -> list[dict]:
        """Every usable backup, newest first; staging directories and unusable entries are skipped."""
        found = [self._usable(name) for name in self._entries() if not name.startswith(STAGING_PREFIX)]
        return sorted((entry for entry in found if entry), key=lambda entry: entry["name"], reverse=True)

    def listing(self) -> list[dict]:
        return [
            {key: entry[key] for key in ("name", "kind", "label", "created")} | {"files": len(entry["files"])}
            for entry in self.manifests()
        ]

    def _newest(self, kind: str) -> dict | None:
        return next((entry for entry in self.manifests() if entry["kind"] == kind), None)

    def _new_name(self) -> str:
        # Microseconds keep names unique and in creation order, even for saves within one second.
        name = datetime.now(UTC).strftime(NAME_FORMAT)
        while os.path.lexists(os.path.join(self.root, name)):
            time.sleep(0.000001)
            name = datetime.now(UTC).strftime(NAME_FORMAT)
        return name

    def _remove(self, name: str) -> None:
        """Remove the entry ROOT/name itself: a symbolic link or a file is unlinked (never followed), and a
        directory is removed only when it resolves to that same place directly under the root."""
        path = os.path.join(self.root, name)
        if "/" in name or name in ("", ".", ".."):
            raise BackupError(f"refusing to remove {path}: it is not an entry directly under {self.root}")
        with os_errors(f"remove {path}"):
            if os.path.islink(path) or not os.path.isdir(path):
                os.unlink(path)
                return
            if os.path.realpath(path) != os.path.join(os.path.realpath(self.root), name):
                raise BackupError(f"refusing to remove {path}: it resolves outside {self.root}")
            shutil.rmtree(path)

    def _staging_leftovers(self) -> list[str]:
        return [name for name in self._entries() if name.startswith(STAGING_PREFIX)]

    def _fill(self, staging: str, manifest: dict) -> None:
        for entry in manifest["files"]:
            copy = os.path.join(staging, "files", entry["path"].lstrip("/"))
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copy2(entry["path"], copy)
        with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())

    def _write(self, path: str, manifest: dict) -> None:
        """Fill a staging directory and rename it to path; a failure removes the staging directory."""
        with os_errors(f"create a backup under {self.root}"):
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            staging = tempfile.mkdtemp(dir=self.root, prefix=STAGING_PREFIX)
        try:
            self._fill(staging, manifest)
            os.rename(staging, path)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise BackupError(f"cannot save backup {manifest['name']} under {self.root}: {exc}") from exc

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
            self._write(path, manifest)
        return {"backup": name, "path": path, "files": files}

    @staticmethod
    def _refuse_special_modes(files: list[dict]) -> None:
        special = [f"{entry['path']} ({entry['mode']})" for entry in files if mode_problem(entry["mode"])]
        if special:
            raise BackupError(
                f"refusing to back up files with setuid, setgid or sticky bits, which a restore refuses: "
                f"{', '.join(special)}"
            )

    def save(self, label: str = "") -> dict:
        """Remove what interrupted saves left, then save the current files unless the newest deployment backup
        holds exactly them."""
        cleaned = self._staging_leftovers()
        if not self.dry_run:
            for name in cleaned:
                self._remove(name)
        files = self.current()
        self._refuse_special_modes(files)
        newest = self._newest(DEPLOYMENT)
        if newest is not None and self._same(newest["files"], files):
            self._protected = newest["name"]
            return {
                "backup": newest["name"],
                "path": os.path.join(self.root, newest["name"]),
                "files": files,
                "created": False,
                "cleaned": cleaned,
            }
        saved = self._save(files, DEPLOYMENT, label)
        self._protected = saved["backup"]
        return saved | {"created": True, "cleaned": cleaned}

    @staticmethod
    def _same(saved: list[dict], current: list[dict]) -> bool:
        def key(entries):
            return sorted((entry["path"], entry["sha256"], entry["mode"]) for entry in entries)

        return key(saved) == key(current)

    def _newest_labelled(self, label: str) -> dict | None:
        return next(
            (entry for entry in self.manifests() if entry["kind"] == DEPLOYMENT and entry["label"] == label), None
        )

    def _chosen(self, name: str, label: str = "") -> dict:
        manifests = self.manifests()
        known = ", ".join(f"{entry['name']} ({entry['label'] or entry['kind']})" for entry in manifests) or "none"
        if name:
            chosen = next((entry for entry in manifests if entry["name"] == name), None)
            if chosen is None:
                raise BackupError(f"no backup named '{name}' under {self.root}; the backups are: {known}")
            return chosen
        chosen = self._newest_labelled(label) if label else self._newest(DEPLOYMENT)
        if chosen is None and label:
            raise BackupError(
                f"there is no backup labelled '{label}' under {self.root}, so no deployment of this host was ever "
                "validated to go back to; nothing was restored. Restore one by name if you must; the backups are: "
                f"{known}"
            )
        if chosen is None:
            raise BackupError(f"there is no backup under {self.root} to restore")
        return chosen

    def _refuse_unsafe(self, backup: dict) -> None:
        """Refuse a backup that would write outside paths, or a mode above 0777."""
        problems, seen = [], set()
        for entry in backup["files"]:
            path = entry["path"]
            problem = path_problem(path, self.patterns) or mode_problem(entry["mode"])
            if not problem and path in seen:
                problem = "is listed twice"
            seen.add(path)
            if problem:
                problems.append(f"{path} {problem}")
        if problems:
            raise BackupError(
                f"backup {backup['name']} is refused: {'; '.join(problems)}; nothing was restored. "
                f"Restore another backup (name=...)."
            )

    def _verified_copy(self, backup: dict, entry: dict) -> str:
        """The stored copy of one file, after checking it is a plain file under the backup with the recorded
        checksum."""
        files = os.path.join(self.root, backup["name"], "files")
        relative = entry["path"].lstrip("/")
        copy = os.path.join(files, relative)
        damaged = f"backup {backup['name']} is damaged: its copy of {entry['path']}"
        advice = "nothing was restored. Restore another backup (name=...)."
        if os.path.realpath(copy) != os.path.join(os.path.realpath(files), relative):
            raise BackupError(f"{damaged} is a symbolic link or lies under one; {advice}")
        with os_errors(f"read {copy}"):
            if not os.path.isfile(copy) or _sha256(copy) != entry["sha256"]:
                raise BackupError(f"{damaged} is missing or does not match the manifest's sha256; {advice}")
        return copy

    def _verified_copies(self, backup: dict) -> dict[str, str]:
        """The stored copy of each file of a backup that is safe to restore."""
        self._refuse_unsafe(backup)
        return {entry["path"]: self._verified_copy(backup, entry) for entry in backup["files"]}

    def _apply(self, backup: dict, copies: dict[str, str], to_write: list[dict], to_remove: list[str]) -> None:
        done: list[str] = []
        try:
            for entry in to_write:
                _write_atomically(copies[entry["path"]], entry["path"], entry["mode"])
                done.append(entry["path"])
            for path in to_remove:
                os.unlink(path)
                done.append(path)
        except OSError as exc:
            raise BackupError(
                f"restoring backup {backup['name']} stopped: {exc}; already restored or removed: "
                f"{', '.join(done) or 'nothing'}"
            ) from exc

    def restore(self, name: str = "", label: str = "") -> dict:
        """Put backup name back; without a name, the newest deployment backup labelled label (any label when
        label is empty)."""
        backup = self._chosen(name, label)
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
            self._apply(backup, copies, to_write, to_remove)
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

    def prune(self, keep: int, keep_label: str = "") -> list[str]:
        """Delete the oldest backups beyond keep of each kind; the one just saved or restored stays, and so does
        the newest labelled keep_label (however many newer ones there are)."""
        labelled = self._newest_labelled(keep_label) if keep_label else None
        spared = {self._protected, labelled["name"] if labelled else ""}
        doomed = []
        for kind in KINDS:
            of_kind = [entry["name"] for entry in self.manifests() if entry["kind"] == kind]
            doomed += [name for name in of_kind[keep:] if name not in spared]
        if not self.dry_run:
            for name in doomed:
                self._remove(name)
        return doomed
