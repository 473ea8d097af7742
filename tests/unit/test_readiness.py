# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The readiness check of a restarted server (roles/user_unit/tasks/ready_one.yml), as phase 3 runs it.

A server that starts, answers its probes and lists its names, and then fails every chat completion (a model
that fails at the first request, a prompt over its context) is not ready, and the error names the unit, the
host, the name asked for and the server's own answer. The task file's own module arguments and message are
rendered with Ansible's templar and the modules run against a real local HTTP server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.labai.llm_stack.plugins.modules import chat_smoke, model_registration
from module_runner import run_module
from openai_test_server import UNSERVED, OpenAIServer

ROLE = Path(__file__).resolve().parents[2] / "roles" / "user_unit"
HOST = "llm-stack-site-debian12"
JOURNAL = "Exception: Invalid chat handler: no-such-format"


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def service(server: OpenAIServer, scenario: str, names: list[str]) -> dict:
    """A llama.cpp record of the plan, as phase 3 reads it from the deployment record."""
    return {
        "unit": "llm-llamacpp-lab-cpp.service",
        "backend": "llamacpp",
        "probe_url": server.url(scenario),
        "names": names,
        "chat_model": names[0],
        "ready_timeout": 2,
        "ca_path": "",
    }


def readiness(capsys, record: dict) -> tuple[dict, dict | None, str | None]:
    """Run ready_one.yml's block: the listing, then (once it lists its names) the chat completion; on a failure,
    its rescue's message. Returns the two results (None: not run) and the message (None: ready)."""
    loader = DataLoader()
    [wait] = loader.load_from_file(str(ROLE / "tasks" / "ready_one.yml"), trusted_as_template=True)
    listing, chat, _ = wait["block"]
    variables = {
        **loader.load_from_file(str(ROLE / "defaults" / "main.yml"), trusted_as_template=True),
        **wait["vars"],
        "user_unit_service": record,
        "inventory_hostname": HOST,
    }
    templar = Templar(loader=loader, variables=variables)
    listing_args = templar.template(listing["labai.llm_stack.model_registration"])
    listed = run_module(model_registration.main, listing_args, capsys)
    variables["__user_unit_listed"] = listed
    answer = None
    if not listed.get("failed"):
        answer = run_module(chat_smoke.main, templar.template(chat["labai.llm_stack.chat_smoke"]), capsys)
        variables["__user_unit_answer"] = answer
        if not answer.get("failed"):
            return listed, answer, None
    [_, fail] = wait["rescue"]
    variables.update(fail["vars"])
    variables["ansible_failed_result"] = answer or listed
    variables["__user_unit_journal"] = {"stdout": JOURNAL}
    message = Templar(loader=loader, variables=variables).template(fail["ansible.builtin.fail"]["msg"])
    return listed, answer, message


@pytest.mark.parametrize("scenario", sorted(UNSERVED))
def test_a_server_that_lists_its_names_but_fails_completions_is_not_ready(server, capsys, scenario):
    listed, answer, message = readiness(capsys, service(server, scenario, ["qwen-coder"]))
    assert listed["present"] == ["qwen-coder"]
    assert "failed" not in listed
    assert answer["failed"]
    assert answer["status"] == UNSERVED[scenario][0]
    error = UNSERVED[scenario][1]["error"]["message"]
    assert message == (
        f"llm-llamacpp-lab-cpp.service on {HOST} is not ready: it lists qwen-coder but fails a chat completion"
        f" of qwen-coder: HTTP {answer['status']} from {server.url(scenario)}/v1/chat/completions: {error}\n"
        f"Its last journal lines:\n{JOURNAL}"
    )


def test_the_completion_asked_for_is_plain_short_and_of_the_first_name(server, capsys):
    before = len(server.requests)
    readiness(capsys, service(server, "badformat", ["qwen-coder", "qwen-math"]))
    listing, completion = server.requests[before:]
    assert listing["path"] == "/badformat/v1/models"
    assert completion["path"] == "/badformat/v1/chat/completions"
    assert {key: completion["body"][key] for key in ("model", "stream", "max_tokens")} == {
        "model": "qwen-coder",
        "stream": False,
        "max_tokens": 2,
    }


def test_a_server_that_serves_is_ready(server, capsys):
    listed, answer, message = readiness(capsys, service(server, "serving", ["qwen-coder"]))
    assert message is None
    assert listed["present"] == ["qwen-coder"]
    assert answer["content"]


def test_a_server_that_does_not_list_its_names_is_not_ready_without_a_completion(server, capsys):
    before = len(server.requests)
    listed, answer, message = readiness(capsys, {**service(server, "badformat", ["lab-cpp"]), "ready_timeout": 0})
    assert listed["missing"] == ["lab-cpp"]
    assert answer is None
    assert [request["path"] for request in server.requests[before:]] == ["/badformat/v1/models"]
    assert message.startswith(
        f"llm-llamacpp-lab-cpp.service on {HOST} is not ready: models missing from "
        f"{server.url('badformat')}/v1/models after "
    )
    assert "but fails a chat completion" not in message
