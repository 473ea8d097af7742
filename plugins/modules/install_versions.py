#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The old versions of an install removed: the ones in use, those an installed unit names and the newest kept."""

from __future__ import annotations

DOCUMENTATION = r"""
module: install_versions
author: labai
version_added: "1.0.0"
short_description: Remove the old versions of an install, keeping the ones in use and the newest others
description:
  - Each version of an install (a virtualenv, a release, a build) lives in a directory of its own under O(root),
    named by what it was installed from, and the units run it there by that path, so a rollback that restores the
    units of an earlier deploy brings back the code they were written for, as long as that version is still there.
    This module lists the versions (the entries directly under O(root) whose name matches O(pattern), directories
    or symbolic links, which are never followed) and removes the old ones.
  - Kept are the versions of O(in_use), every version that one of the files O(referenced_by) matches names by its
    path (the installed units, so what the servers run now and what a rollback of this deploy restores) with the
    version a kept link leads to, and the newest O(keep) others, by modification time. Every other version is
    removed, with its O(companions).
  - Nothing is removed but entries directly under O(root) and companions that are regular files or symbolic
    links. A version whose name does not match O(pattern) is never touched.
  - Every error of the file system fails the module with the path and the error.
options:
  root:
    description: The directory that holds the versions. Missing, there is nothing to remove.
    type: path
    required: true
  pattern:
    description: Python regular expression that the name of a version matches in full.
    type: str
    required: true
  in_use:
    description: Versions always kept (the one the units are about to run), by path.
    type: list
    elements: path
    default: []
  keep:
    description: How many versions to keep besides those in use or named by O(referenced_by), newest first.
    type: int
    default: 2
  referenced_by:
    description:
      - Glob patterns of files (the installed units) that name versions by their path, such as
        C(~/.config/systemd/user/llm-*.service). A version one of them names is kept, and does not count toward
        O(keep). A path counts when it is followed by C(/), a quote, white space or the end of a line.
    type: list
    elements: str
    default: []
  companions:
    description:
      - Files that belong to a version and go with it (its download, say), with C({name}) where the version's name
        goes. Only a regular file or a symbolic link is removed.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Reports what would be removed, and removes nothing.
  diff_mode:
    support: full
    details: The versions before and after, one name a line.
"""

EXAMPLES = r"""
- name: Remove the old virtualenvs, keeping the one installed, what the units run and two others
  labai.llm_stack.install_versions:
    root: "{{ service_account_info.home }}/.local/share/llm-stack/vllm"
    pattern: '^venv(-[0-9a-f]{12})?$'
    in_use: ["{{ service_account_info.home }}/.local/share/llm-stack/vllm/venv-0123456789ab"]
    referenced_by: ["{{ service_account_info.systemd_user_dir }}/llm-*.service"]
    keep: 2

- name: Remove the old Ollama releases with their archives
  labai.llm_stack.install_versions:
    root: "{{ service_account_info.home }}/.local/share/llm-stack/ollama"
    pattern: '^.+-[0-9a-fA-F]{12}$'
    in_use: ["{{ service_account_info.home }}/.local/share/llm-stack/ollama/0.13.5-0123456789ab"]
    referenced_by: ["{{ service_account_info.systemd_user_dir }}/llm-*.service"]
    companions: ["{{ service_account_info.home }}/.local/share/llm-stack/ollama/archives/ollama-{name}.tgz"]
"""

RETURN = r"""
versions:
  description: Every version found, newest first, each with C(name), C(path), C(mtime) and C(kept), the reason it
    is kept (C(in use), C(named by a unit), C(newest)) or C(null) when it is removed.
  type: list
  elements: dict
  returned: always
removed:
  description: The paths removed (in check mode, to be removed), companions included.
  type: list
  elements: str
  returned: always
"""

import glob
import os
import re
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule

# A unit names a path on its own: what follows it ends the path or goes on below it.
PATH_END = r"""(?=[/"'\s]|$)"""
# What the systemd_command filter escapes in ExecStart= lines.
SYSTEMD_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("%", "%%"), ("$", "$$"))
# A unit file larger than this is not read: no unit of ours comes near it.
MAX_REFERENCE_BYTES = 1 << 20


def _systemd_form(path: str) -> str:
    for raw, escaped in SYSTEMD_ESCAPES:
        path = path.replace(raw, escaped)
    return path


def names_path(text: str, path: str) -> bool:
    """Whether ``text`` names ``path`` itself, or something below it, as written or as systemd quotes it."""
    forms = {path, _systemd_form(path)}
    return any(re.search(re.escape(form) + PATH_END, text, re.MULTILINE) for form in forms)


class InstallVersions:
    """The versions under one root, which of them to keep, and their removal."""

    def __init__(self, root: str, pattern: str, companions: list[str]) -> None:
        self.root = os.path.normpath(root)
        self.pattern = re.compile(pattern)
        self.companions = companions

    def listing(self) -> list[dict]:
        """Every version, newest first (by modification time, then by name)."""
        if not os.path.isdir(self.root):
            return []
        found = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not self.pattern.fullmatch(entry.name):
                    continue
                status = entry.stat(follow_symlinks=False)
                if not (stat.S_ISDIR(status.st_mode) or stat.S_ISLNK(status.st_mode)):
                    continue
                found.append({"name": entry.name, "path": entry.path, "mtime": status.st_mtime})
        return sorted(found, key=lambda version: (version["mtime"], version["name"]), reverse=True)

    @staticmethod
    def referencing_text(patterns: list[str]) -> str:
        """The text of every regular file the patterns match."""
        texts = []
        for pattern in patterns:
            for path in sorted(glob.glob(pattern)):
                if not os.path.isfile(path) or os.path.getsize(path) > MAX_REFERENCE_BYTES:
                    continue
                with open(path, "rb") as handle:
                    texts.append(handle.read().decode("utf-8", errors="replace"))
        return "\n".join(texts)

    def plan(self, in_use: list[str], referencing: str, keep: int) -> list[dict]:
        """The listing, each version with the reason it is kept, or None when it goes."""
        used = {os.path.normpath(path) for path in in_use}
        versions = self.listing()
        for version in versions:
            if version["path"] in used:
                version["kept"] = "in use"
            elif names_path(referencing, version["path"]):
                version["kept"] = "named by a unit"
            else:
                version["kept"] = None
        # A link kept (the 'current' of earlier releases) keeps the version it leads to.
        leads_to = {
            os.path.realpath(version["path"])
            for version in versions
            if version["kept"] and os.path.islink(version["path"])
        }
        for version in versions:
            if (
                version["kept"] is None
                and not os.path.islink(version["path"])
                and os.path.realpath(version["path"]) in leads_to
            ):
                version["kept"] = "named by a unit"
        newest = 0
        for version in versions:
            if version["kept"] is None and newest < keep:
                newest += 1
                version["kept"] = "newest"
        return versions

    def companions_of(self, name: str) -> list[str]:
        """The companions of a version that are there to remove: regular files or symbolic links."""
        found = []
        for companion in self.companions:
            path = companion.replace("{name}", name)
            try:
                status = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode):
                found.append(path)
        return found

    def remove(self, version: dict) -> list[str]:
        """Remove a version and its companions; the paths removed."""
        removed = []
        status = os.lstat(version["path"])
        if stat.S_ISLNK(status.st_mode):
            os.unlink(version["path"])
        else:
            shutil.rmtree(version["path"])
        removed.append(version["path"])
        for companion in self.companions_of(version["name"]):
            os.unlink(companion)
            removed.append(companion)
        return removed

    def would_remove(self, version: dict) -> list[str]:
        return [version["path"], *self.companions_of(version["name"])]


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            pattern=dict(type="str", required=True),
            in_use=dict(type="list", elements="path", default=[]),
            keep=dict(type="int", default=2),
            referenced_by=dict(type="list", elements="str", default=[]),
            companions=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["keep"] < 0:
        module.fail_json(msg=f"keep must be 0 or more (got {params['keep']}).")
    if not os.path.isabs(params["root"]):
        module.fail_json(msg=f"root must be an absolute path (got {params['root']}).")
    try:
        pattern = re.compile(params["pattern"])
    except re.error as exc:
        module.fail_json(msg=f"pattern {params['pattern']!r} is not a regular expression: {exc}")
    versions = InstallVersions(params["root"], pattern.pattern, params["companions"])
    removed: list[str] = []
    current = ""
    try:
        referencing = versions.referencing_text(params["referenced_by"])
        planned = versions.plan(params["in_use"], referencing, params["keep"])
        for version in planned:
            if version["kept"] is None:
                current = version["path"]
                removed += versions.would_remove(version) if module.check_mode else versions.remove(version)
    except OSError as exc:
        where = exc.filename or current or params["root"]
        module.fail_json(msg=f"install_versions failed on {where}: {exc.strerror or exc}", removed=removed)
    names = [version["name"] for version in planned]
    kept = [version["name"] for version in planned if version["kept"]]
    module.exit_json(
        changed=bool(removed),
        versions=planned,
        removed=removed,
        diff={"before": "".join(f"{name}\n" for name in names), "after": "".join(f"{name}\n" for name in kept)},
    )


if __name__ == "__main__":
    main()
