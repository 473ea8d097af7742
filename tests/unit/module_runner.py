"""Run a module's main() in-process, as Ansible would run it on a host, and read what it returned."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_module(main, args: dict, capsys: pytest.CaptureFixture, check_mode: bool = False) -> dict:
    """Run a module's main() with ``args`` and return the JSON it printed; ``raw`` is that text."""
    args = {**args, "_ansible_check_mode": check_mode}
    with patch_module_args(args), pytest.raises(SystemExit):
        main()
    raw = capsys.readouterr().out
    return {**json.loads(raw), "raw": raw}
