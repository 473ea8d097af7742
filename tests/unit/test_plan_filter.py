# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.plan filter: registration, pass-through and the error the user reads."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.plan import FilterModule
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan

plan = FilterModule().filters()["plan"]


def test_registers_only_plan():
    assert list(FilterModule().filters()) == ["plan"]


def test_returns_the_plan(catalog, hosts):
    assert plan(catalog, hosts) == build_plan(catalog, hosts)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"routes": [{"pattern": "meta-llama/*", "model": "nope"}]},
            "llm_stack_catalog is invalid (1 problem):\n"
            "  - routes[0].model: 'nope' is not a model name or alias in the catalog; "
            "name a model declared under models",
            id="one-problem",
        ),
        pytest.param(
            {
                "gateway": {"port": 8001, "hosts": ["gpu01"]},
                "routes": [{"pattern": "meta-llama", "model": "qwen-coder"}],
            },
            "llm_stack_catalog is invalid (2 problems):\n"
            "  - gateway.port: 8001 on host gpu01 is already used by models[0] (qwen-coder); "
            "give each service its own port\n"
            "  - routes[0].pattern: 'meta-llama' has no '*'; use a wildcard pattern such as 'meta-llama/*', "
            "or add the exact name as an alias of the model",
            id="two-problems",
        ),
    ],
)
def test_invalid_catalog_raises_filter_error(catalog, hosts, changes, message):
    with pytest.raises(AnsibleFilterError) as exc:
        plan({**catalog, **changes}, hosts)
    assert str(exc.value) == message
