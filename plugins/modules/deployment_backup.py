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
  - With O(state=restored), restores backup O(name) (the newest one when empty); each saved file is written
    back with its bytes and mode, and files that match O(paths) but are not in the backup are removed. The
    files it replaces or removes are first saved as a backup of their own (kind C(before-restore)), so nothing
    is lost; that backup is never chosen by default.
  - A backup is a directory C(ROOT/NAME) with C(manifest.json) (path, sha256, mode, size of each file) and the
    files under C(files/).
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
            result = store.restore(params["name"])
        result["pruned"] = store.prune(params["keep"])
    except BackupError as exc:
        module.fail_json(msg=str(exc))
    changed = bool(result.get("created") or result.get("restored") or result.get("removed") or result["pruned"])
    module.exit_json(changed=changed, backups=store.listing(), **result)


if __name__ == "__main__":
    main()
