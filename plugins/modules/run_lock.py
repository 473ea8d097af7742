#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's deployment lock, held by one run at a time."""

from __future__ import annotations

DOCUMENTATION = r"""
module: run_lock
author: labai
version_added: "1.0.0"
short_description: Hold or release a host's deployment lock, so that two runs never deploy to it at once
description:
  - The lock is one file (O(path)) that names the run holding it (O(run)) and when it took it. It is created
    whole (a hard link to a finished file, which fails when the lock exists), so of two runs that ask at once
    exactly one gets it.
  - With O(state=present), takes the lock. A lock this run holds already is kept as it is. A lock held by
    another run is waited for up to O(wait) seconds; then the module fails with a message that names that
    run (its id, who started it, from which controller, since when) and how to break its lock.
  - A lock whose run is over (killed, or its controller lost) is taken over only when O(break_run) names
    that run's id. A lock written during an earlier boot of the host is taken over by itself (only
    possible when O(path) is not on a C(tmpfs) such as C(/run)).
  - With O(state=absent), removes the lock when this run holds it; a lock of another run is left alone and
    returned in RV(held_by).
  - The file must be a regular file owned by the user the module runs as; any other file there (a symbolic
    link, a file of another user) fails the module and is left alone.
  - The lock is bookkeeping of the run, not a change to the host's deployment, so the module never reports
    C(changed) (a run with nothing to deploy stays at C(changed=0)).
options:
  path:
    description: The lock file. Its directory must exist and be writable by the user the module runs as.
    type: path
    default: /run/lock/labai.llm_stack.lock
  run:
    description: The run, as C(id) (required, unique per run) and the C(user), C(controller) and C(playbook)
      shown to a run that finds the lock held.
    type: dict
    required: true
  state:
    description: C(present) holds the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Seconds to wait for another run to release the lock before failing.
    type: int
    default: 0
  break_run:
    description: The id of a run whose lock may be taken over (it is over, but its lock was left behind).
      Any other holder is still refused.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    details: Fails like a real run when another run holds the lock, and writes or removes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Hold the host's deployment lock, waiting up to 10 minutes for another run
  become: true
  labai.llm_stack.run_lock:
    run: {id: 20261202T131500Z-1234, user: alice, controller: ops1, playbook: site.yml}
    wait: 600

- name: Take over the lock of a run that was killed
  become: true
  labai.llm_stack.run_lock:
    run: {id: 20261202T131500Z-1234, user: alice, controller: ops1, playbook: site.yml}
    break_run: 20261202T120000Z-9876

- name: Release it at the end of the run
  become: true
  labai.llm_stack.run_lock:
    run: {id: 20261202T131500Z-1234}
    state: absent
"""

RETURN = r"""
path:
  description: The lock file.
  type: str
  returned: always
acquired:
  description: Whether this run holds the lock now (in check mode, whether it would).
  type: bool
  returned: when state=present
already_held:
  description: The lock was this run's already.
  type: bool
  returned: when state=present and this run held the lock before
waited:
  description: Seconds spent waiting for another run.
  type: float
  returned: when state=present
broke:
  description: The run whose lock was taken over (O(break_run), or a lock from before the host restarted),
    with C(reason); null when none was.
  type: dict
  returned: when state=present
released:
  description: Whether the lock was (in check mode, would be) removed.
  type: bool
  returned: when state=absent
held_by:
  description: The run holding the lock after this call (state=present), or the one found holding it
    (state=absent; null when there was no lock), with C(id), C(user), C(controller), C(playbook), C(acquired)
    and C(boot_id).
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labai.llm_stack.plugins.module_utils.run_lock import LockError, acquire, release


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/run/lock/labai.llm_stack.lock"),
            run=dict(type="dict", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="int", default=0),
            break_run=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["wait"] < 0:
        module.fail_json(msg=f"wait must be 0 or more seconds (got {params['wait']}).")
    run_id = str(params["run"].get("id") or "")
    try:
        if params["state"] == "present":
            result = acquire(
                params["path"],
                params["run"],
                wait=params["wait"],
                break_run=params["break_run"],
                dry_run=module.check_mode,
            )
            if result["broke"]:
                module.warn(
                    f"Took over the deployment lock of run {result['broke']['id']} "
                    f"({result['broke'].get('user', '?')}@{result['broke'].get('controller', '?')}, since "
                    f"{result['broke'].get('acquired', '?')}): {result['broke']['reason']}."
                )
        else:
            result = release(params["path"], run_id, module.check_mode)
            if result["held_by"] and not result["released"]:
                module.warn(f"The deployment lock is held by run {result['held_by']['id']}, not this one: left alone.")
    except LockError as exc:
        module.fail_json(msg=str(exc), path=params["path"])
    except OSError as exc:
        module.fail_json(msg=f"run_lock failed on {params['path']}: {exc}", path=params["path"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
