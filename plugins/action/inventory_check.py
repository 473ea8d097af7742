# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.inventory_check action: the host's inventory checked on the controller only.

The documentation is in plugins/modules/inventory_check.py. The checks are in
plugins/plugin_utils/inventory_check.py; this plugin only templates each variable they read, one by one,
so that a variable whose template fails is one problem naming it.
"""

from __future__ import annotations

from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.labai.llm_stack.plugins.plugin_utils.inventory_check import (
    check_inventory,
    relevant_names,
)

# The collection's root: plugins/action/inventory_check.py is three levels below it.
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
HOST_GROUP = "llm_hosts"


class ActionModule(ActionBase):
    """Never contacts the host: no module runs there, no command, no fact gathering."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset()
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        host = str(task_vars.get("inventory_hostname", ""))

        values, unresolved = {}, {}
        for name in relevant_names(task_vars, ROLES_DIR):
            try:
                values[name] = self._templar.template(task_vars[name])
            except Exception as error:  # any failure of one variable's template is that variable's problem
                unresolved[name] = getattr(error, "message", None) or str(error)
        # Who Ansible connects as, where the inventory says: the service account must not be that account.
        try:
            connecting = self._templar.template(task_vars.get("ansible_user"))
        except Exception:  # an unusable ansible_user fails the connection itself, with its own message
            connecting = None
        if isinstance(connecting, str) and connecting:
            values["ansible_user"] = connecting
        hosts = self._hosts(task_vars)
        addresses = self._addresses(task_vars, hosts, unresolved)

        problems, plan = check_inventory(values, hosts, ROLES_DIR, host, unresolved, addresses=addresses)
        result["changed"] = False
        result["problems"] = problems
        if problems:
            result["failed"] = True
            count = len(problems)
            result["msg"] = f"{count} problem(s) in the inventory for {host}:\n" + "\n".join(
                f"- {problem}" for problem in problems
            )
        else:
            models = len(plan["models"]) if plan else 0
            result["msg"] = (
                f"inventory for {host} is valid: {models} model(s) on {len(hosts)} host(s); secrets, "
                "controller files and role settings checked"
            )
        return result

    def _addresses(self, task_vars: dict, hosts: list[str], unresolved: dict) -> dict:
        """Each host's llm_stack_address (where other hosts reach its servers bound to every interface)."""
        hostvars = task_vars.get("hostvars") or {}
        addresses = {}
        for name in hosts:
            try:
                raw = hostvars[name].get("llm_stack_address")
                if raw is not None:
                    addresses[name] = self._templar.template(raw)
            except Exception as error:  # that host's address is one problem, named after it
                unresolved[f"llm_stack_address of {name}"] = getattr(error, "message", None) or str(error)
        return addresses

    def _hosts(self, task_vars: dict) -> list[str]:
        groups = task_vars.get("groups") or {}
        return [str(host) for host in groups.get(HOST_GROUP) or []]
