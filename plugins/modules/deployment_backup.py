#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timestamped backups of the files a deployment manages, and their byte-for-byte restore."""

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_backup
author: labai
version_added: "1.0.0"
short_description: Keep timestamped backups of a deployment's files and restore one byte for byte
description:
  - With O(state=present), saves every file matching O(paths) into a new backup under O(root), unless the
    newest backup already holds exactly these files with these contents and modes (so a second run changes
    nothing). Keeps the newest O(keep) backups.
  - With O(state=restored), restores backup O(name) (when empty, the newest one labelled O(validated_label),
    or the newest of any label when that is empty too); each saved file is written
    back with its bytes and mode, and files that match O(paths) but are not in the backup are removed. The
    files it replaces or removes are first saved as a backup of their own (kind C(before-restore)), so nothing
    is lost; that backup is never chosen by default.
  - A backup is a directory C(ROOT/NAME) with C(manifest.json) (path, sha256, mode, size of each file) and the
    files under C(files/). A save fills a staging directory C(ROOT/.saving-*) and renames it to C(NAME) when
    complete.
  - The contents of O(root) are not trusted. An entry is used as a backup only when it is a directory (not a
    symbolic link) named by a timestamp in the format the module writes (C(20261126T071502.123456Z)) and its
    C(manifest.json) is a regular file that parses, names that same directory and lists well-formed files; any
    other entry is skipped with a warning (so a truncated manifest never stops later saves, and the newest good
    backup is used). Staging directories left by an interrupted save are skipped, and removed by the next
    O(state=present) run (RV(cleaned)). Pruning removes only entries directly under O(root), never through a
    symbolic link.
  - A restore refuses the whole backup, before anything changes, when a file it lists is not an absolute,
    normalised path (no C(.), C(..), C(//)) matched by O(paths) as C(glob) matches it, is listed twice, has a mode
    above C(0777) (setuid, setgid, sticky), or when a stored copy is missing, differs from its sha256, or lies
    behind a symbolic link. A save refuses files with setuid, setgid or sticky bits for the same reason.
  - Every error of the file system (permission, full disk, missing file) fails the module with the path and the
    error.
options:
  root:
    description: Directory that holds the backups.
    type: path
    required: true
  paths:
    description: Glob patterns of absolute paths, the files the deployment manages.
    type: list
    elements: str
    required: true
  state:
    description: C(present) saves the current files, C(restored) puts a backup back.
    type: str
    choices: [present, restored]
    default: present
  name:
    description: The backup to restore (a name from RV(backups)); empty means the newest deployment backup.
    type: str
    default: ""
  label:
    description: Free text stored in the manifest of a new backup (why it was taken).
    type: str
    default: ""
  validated_label:
    description:
      - The label of the backups that hold a deployment that passed validation. Without O(name), a restore takes
        the newest of them, never a newer backup of files that were not validated (those of a deploy cut short);
        it fails when there is none. Pruning always keeps the newest of them.
      - Empty, a restore takes the newest deployment backup, whatever its label.
    type: str
    default: ""
  keep:
    description: How many deployment backups to keep; older ones are deleted. C(before-restore) backups are
      kept as many times again.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    details: Reports what would be saved, restored or removed, and changes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Back up the units and configs before rendering new ones
  labai.llm_stack.deployment_backup:
    root: "{{ service_account_info.state_dir }}/backups"
    paths:
      - "{{ service_account_info.systemd_user_dir }}/llm-*.service"
      - "{{ service_account_info.config_dir }}/llm-stack/*.env"
    label: before deploy
    keep: 5

- name: Put the newest backup back
  labai.llm_stack.deployment_backup:
    root: "{{ service_account_info.state_dir }}/backups"
    paths:
      - "{{ service_account_info.systemd_user_dir }}/llm-*.service"
      - "{{ service_account_info.config_dir }}/llm-stack/*.env"
    state: restored
"""

RETURN = r"""
backup:
  description: The backup saved (state=present; the newest one when nothing changed) or restored.
  type: str
  returned: always
  sample: 20261126T071502.123456Z
path:
  description: Its directory.
  type: str
  returned: always
created:
  description: Whether a new backup was (or, in check mode, would be) saved.
  type: bool
  returned: always
files:
  description: The files of that backup, each with C(path), C(sha256), C(mode) and C(size).
  type: list
  elements: dict
  returned: always
restored:
  description: Paths written back (their content or mode differed).
  type: list
  elements: str
  returned: when state=restored
removed:
  description: Paths removed because the backup does not have them.
  type: list
  elements: str
  returned: when state=restored
saved_before_restore:
  description: The C(before-restore) backup of what was replaced or removed; empty when nothing was.
  type: str
  returned: when state=restored
cleaned:
  description: Staging directories (C(.saving-*)) left by an interrupted save, removed (in check mode, to be
    removed) before saving.
  type: list
  elements: str
  returned: when state=present
pruned:
  description: Backups deleted to keep O(keep).
  type: list
  elements: str
  returned: always
backups:
  description: Every backup after this run, newest first, each with C(name), C(kind), C(label), C(created) and
    C(files) (a count).
  type: list
  elements: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labai.llm_stack.plugins.module_utils.file_backups import (
    BackupError,
    BackupStore,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            paths=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "restored"], default="present"),
            name=dict(type="str", default=""),
            label=dict(type="str", default=""),
            keep=dict(type="int", default=5),
            validated_label=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["keep"] < 1:
        module.fail_json(msg=f"keep must be 1 or more (got {params['keep']}): the newest backup is always kept.")
    try:
        store = BackupStore(params["root"], params["paths"], dry_run=module.check_mode)
        if params["state"] == "present":
            result = store.save(label=params["label"])
        else:
            result = store.restore(params["name"], params["validated_label"])
        result["pruned"] = store.prune(params["keep"], params["validated_label"])
        backups = store.listing()
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"deployment_backup failed on {params['root']}: {exc}")
    for reason in store.skipped.values():
        module.warn(reason)
    changed = any(result.get(key) for key in ("created", "restored", "removed", "cleaned", "pruned"))
    module.exit_json(changed=changed, backups=backups, **result)


if __name__ == "__main__":
    main()
