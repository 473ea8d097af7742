# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The models Ollama holds against the digests the catalog pins (ollama.digest), word for word."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labai.llm_stack.plugins.filter.ollama_digest_problems import ollama_digest_problems

PINNED = "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a"
OTHER = "c6eb396dbd5992bbe3f5cdb947e8bbc0ee413d7c17e2beaae69f5d569cf982eb"
SERVER = "http://127.0.0.1:11434"
PINS = [{"model": "qwen2.5-coder:7b", "digest": PINNED, "name": "qwen-coder-ollama"}]


def tags(*models: tuple[str, str]) -> dict:
    """An /api/tags answer, shaped as Ollama gives it."""
    return {
        "models": [
            {"name": name, "model": name, "modified_at": "2026-01-01T00:00:00Z", "size": 1, "digest": digest}
            for name, digest in models
        ]
    }


@pytest.mark.parametrize(
    "listed",
    [
        tags(("qwen2.5-coder:7b", PINNED)),
        tags(("llama3.2:latest", OTHER), ("qwen2.5-coder:7b", PINNED)),
        tags(("qwen2.5-coder:7b", f"sha256:{PINNED.upper()}")),
    ],
)
def test_the_pinned_digest_passes(listed):
    assert ollama_digest_problems(listed, PINS, SERVER) == []


def test_nothing_pinned_nothing_compared():
    assert ollama_digest_problems(tags(("qwen2.5-coder:7b", OTHER)), []) == []


def test_another_digest_names_the_model_both_digests_and_the_fix():
    assert ollama_digest_problems(tags(("qwen2.5-coder:7b", OTHER)), PINS, SERVER) == [
        f"qwen2.5-coder:7b: Ollama lists digest {OTHER}, but llm_stack_catalog's ollama.digest of qwen-coder-ollama "
        f"is {PINNED}; remove the model (OLLAMA_HOST={SERVER} ollama rm qwen2.5-coder:7b, as the service account) "
        f"and deploy again to pull it anew, or correct ollama.digest of qwen-coder-ollama if {OTHER} is the digest "
        "to trust"
    ]


def test_without_a_server_the_fix_is_plain_ollama_rm():
    [problem] = ollama_digest_problems(tags(("qwen2.5-coder:7b", OTHER)), PINS)
    assert "(ollama rm qwen2.5-coder:7b, as the service account)" in problem


def test_a_model_ollama_does_not_list_cannot_pass():
    assert ollama_digest_problems(tags(("qwen2.5-coder:latest", PINNED)), PINS, SERVER) == [
        "qwen2.5-coder:7b: Ollama does not list it, so its digest cannot be compared: llm_stack_catalog's "
        f"ollama.digest of qwen-coder-ollama is {PINNED}; check that the pull succeeded (GET /api/tags must list "
        "the model) and deploy again"
    ]


def test_every_pinned_model_is_reported():
    pins = [*PINS, {"model": "tiny:latest", "digest": OTHER, "name": "tiny"}]
    problems = ollama_digest_problems(tags(("qwen2.5-coder:7b", OTHER), ("tiny:latest", PINNED)), pins, SERVER)
    assert [problem.split(":", 2)[:2] for problem in problems] == [["qwen2.5-coder", "7b"], ["tiny", "latest"]]


@pytest.mark.parametrize("answer", [None, [], {"models": None}, {"error": "not found"}])
def test_refuses_what_is_not_an_api_tags_answer(answer):
    with pytest.raises(AnsibleFilterError, match="ollama_digest_problems: expected the answer of /api/tags"):
        ollama_digest_problems(answer, PINS)
