# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vLLM unit's ExecStart, rendered from a plan record: vllm.revision pins the Hub model (security issue #13).

roles/vllm/templates/unit.service.j2 is rendered as the template module renders it (tests/unit/unit_templates.py),
and its ExecStart= line is split back into the arguments vLLM gets.
"""

from __future__ import annotations

import pytest
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan
from unit_templates import exec_start as unit_exec_start
from unit_templates import render_unit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def exec_start(catalog: dict, hosts: list[str]) -> list[str]:
    """The arguments of the ExecStart= line of the seed's vLLM model on gpu01."""
    [service] = [
        record for record in build_plan(catalog, hosts)["hosts"]["gpu01"]["services"] if record["backend"] == "vllm"
    ]
    return unit_exec_start(render_unit("vllm", service))


@pytest.mark.parametrize("revision", [COMMIT, "v2.1"])
def test_a_revision_reaches_vllm(catalog, hosts, revision):
    catalog["models"][0]["vllm"]["revision"] = revision
    argv = exec_start(catalog, hosts)
    assert argv[argv.index("--model") + 1] == "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
    assert argv.count("--revision") == 1
    assert argv[argv.index("--revision") + 1] == revision
    # vLLM loads the tokenizer (and transformers the remote code) of the same repository at the model's
    # revision unless told otherwise: the role passes neither of these.
    assert "--tokenizer-revision" not in argv and "--code-revision" not in argv


def test_without_a_revision_vllm_gets_none(catalog, hosts):
    argv = exec_start(catalog, hosts)
    assert "--revision" not in argv
    assert argv[argv.index("--served-model-name") + 1 : argv.index("--host")] == [
        "qwen-coder",
        "qwen-math",
        "llama2-13b-vllm",
    ]


def test_extra_args_come_after_the_revision(catalog, hosts):
    catalog["models"][0]["vllm"].update(revision=COMMIT, extra_args=["--tokenizer-revision", "v1"])
    argv = exec_start(catalog, hosts)
    assert argv[-2:] == ["--tokenizer-revision", "v1"]
    assert argv.index("--revision") < len(argv) - 2
