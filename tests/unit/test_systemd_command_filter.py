"""ExecStart= lines that systemd splits back into the same arguments."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.systemd_command import systemd_command


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["/bin/app", "--port", 8001], '"/bin/app" "--port" "8001"'),
        (["/bin/app", "a b"], '"/bin/app" "a b"'),
        (["/bin/app", "50%", "$HOME"], '"/bin/app" "50%%" "$$HOME"'),
        (["/bin/app", 'say "hi"', "back\\slash"], '"/bin/app" "say \\"hi\\"" "back\\\\slash"'),
    ],
)
def test_quotes_every_argument(argv, line):
    assert systemd_command(argv) == line


@pytest.mark.parametrize("argv", [[], ["/bin/app", None], ["/bin/app", ["nested"]]])
def test_refuses_what_is_not_an_argument_list(argv):
    with pytest.raises(AnsibleFilterError, match="systemd_command: "):
        systemd_command(argv)
