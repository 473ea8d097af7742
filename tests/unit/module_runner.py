"""Run a module's main() in-process, as Ansible would run it on a host, and read what it returned."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args


def run_module(main, args: dict, capsys: pytest.CaptureFixture, check_mode: bool = False) -> dict:
    """Run a module's main() with ``args`` and return the JSON it printed; ``raw`` is that text."""
    args = {**args, "_ansible_check_mode": check_mode}
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    raw = capsys.readouterr().out
    return {**json.loads(raw), "raw": raw}


def run_host_module(main, args: dict, capsys: pytest.CaptureFixture, check_mode: bool = False) -> dict:
    """run_module as on a host, where warn() returns its warnings; ``warned`` holds their text (this run's only:
    the store is global). Other tests import controller code, which makes warn() print instead."""
    ansible_warnings._global_warnings.clear()
    controller, module_utils_internal.is_controller = module_utils_internal.is_controller, False
    try:
        result = run_module(main, args, capsys, check_mode=check_mode)
    finally:
        module_utils_internal.is_controller = controller
    return result | {"warned": [warning["event"]["msg"] for warning in result.get("warnings", [])]}
