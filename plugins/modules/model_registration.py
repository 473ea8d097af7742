#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.model_registration module: wait until an OpenAI-compatible server lists models."""

from __future__ import annotations

DOCUMENTATION = r"""
module: model_registration
author: labai
version_added: "0.1.0"
short_description: Wait until an OpenAI-compatible server lists the expected models
description:
  - Polls C(GET /v1/models) of a vLLM, llama.cpp, Ollama or LiteLLM server until every name of
    O(expected) is listed, or fails at the deadline O(wait) naming the last problem seen.
  - A name counts as listed when it is the C(id) of an entry of C(data), or one of that entry's
    C(aliases) (llama.cpp's C(llama-server) lists extra names there). Ollama lists untagged models as
    C(<name>:latest); an expected C(<name>) matches it.
  - A refused API key (HTTP 401 or 403) or HTTP 404 fails at once, without waiting; a server that does not
    answer, answers HTTP 5xx, 408 or 429, answers something that is not the JSON listing, or lists only some
    of the names is polled again every O(interval) seconds until O(wait) has passed.
  - Only reads from the server; it never reports C(changed).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - labai.llm_stack.openai_connection
attributes:
  check_mode:
    support: full
    details: The module only reads from the server, so it polls and reports the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description:
      - Base URL of the OpenAI-compatible server, such as V(http://127.0.0.1:4000).
      - C(/v1/models) is appended; a URL that already ends with C(/v1) only gets C(/models).
    type: str
    required: true
  expected:
    description:
      - The model names and aliases that must be listed. An empty list only checks that the server
        answers a model listing.
    type: list
    elements: str
    required: true
  wait:
    description:
      - Seconds to keep polling until every expected name is listed. V(0) makes one attempt.
    type: float
    default: 120
  interval:
    description: Seconds between two polls.
    type: float
    default: 2
  timeout:
    description: Timeout of each request, in seconds.
    type: float
    default: 10
notes:
  - Uses only the Python standard library and Ansible's C(open_url) on the target host.
seealso:
  - module: labai.llm_stack.chat_smoke
"""

EXAMPLES = r"""
- name: Wait until the gateway lists every public name of the catalog
  labai.llm_stack.model_registration:
    url: http://127.0.0.1:4000
    api_key: "{{ llm_stack_litellm_master_key }}"
    expected: "{{ llm_stack_plan.public_names }}"
    wait: 180
  register: __litellm_models

- name: Check that llama-server serves its alias, one attempt only
  labai.llm_stack.model_registration:
    url: http://127.0.0.1:8080/v1
    api_key: "{{ llm_stack_llamacpp_api_key }}"
    expected: [qwen-coder-native]
    wait: 0

- name: Show what the gateway lists that the catalog does not name
  ansible.builtin.debug:
    var: __litellm_models.unexpected
"""

RETURN = r"""
present:
  description: The expected names that are listed, in the order of O(expected).
  returned: always
  type: list
  elements: str
  sample: [qwen-coder, qwen-math]
missing:
  description: The expected names that are not listed (after the last listing that could be read).
  returned: always
  type: list
  elements: str
  sample: []
unexpected:
  description: Listed names (ids and aliases) that O(expected) does not name, sorted.
  returned: always
  type: list
  elements: str
  sample: [qwen-coder-ollama]
ids:
  description: The C(id) of each entry of C(data), in the server's order.
  returned: always
  type: list
  elements: str
  sample: [qwen-coder, qwen-math, "tiny-llama:latest"]
waited:
  description: Seconds from the first request to the end, rounded to 0.01.
  returned: always
  type: float
  sample: 4.02
attempts:
  description: How many requests were sent.
  returned: always
  type: int
  sample: 3
status:
  description: HTTP status of the last answer; V(null) when the last request got no answer.
  returned: always
  type: int
  sample: 200
"""

import time
from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labai.llm_stack.plugins.module_utils.openai_client import (
    AuthRejected,
    HttpError,
    NotJson,
    ServerNotAnswering,
    connection_argument_spec,
    connection_options,
    endpoint,
    excerpt,
    get_json,
)

RETRIED_STATUSES = (408, 429)  # and every 5xx: a server starting or overloaded may answer later
OLLAMA_TAG = ":latest"


def canonical(name: str) -> str:
    """Ollama lists an untagged model as ``<name>:latest``: both spellings are the same model."""
    return name[: -len(OLLAMA_TAG)] if name.endswith(OLLAMA_TAG) else name


def listed_names(url: str, answer) -> tuple[list[str], list[str]]:
    """The ids of a ``/v1/models`` answer, and every name it lists (ids and aliases), in server order."""
    data = answer.data.get("data") if isinstance(answer.data, dict) else None
    if data is None and isinstance(answer.data, dict) and "data" in answer.data:
        data = []  # Ollama lists no models as "data": null
    if not isinstance(data, list):
        body = excerpt(str(answer.data))
        raise NotJson(url, answer.status, answer.headers, body, f"answered JSON without a 'data' list: {body}")
    ids, names = [], []
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            body = excerpt(str(entry))
            raise NotJson(url, answer.status, answer.headers, body, f"answered a model without a string 'id': {body}")
        ids.append(entry["id"])
        aliases = entry.get("aliases")
        extra = [a for a in aliases if isinstance(a, str)] if isinstance(aliases, list) else []
        names.extend(name for name in [entry["id"], *extra] if name not in names)
    return ids, names


def fixed(message: str) -> Callable[[float], str]:
    """A message that does not name the seconds waited."""
    return lambda _waited: message


class Registration:
    """Poll ``/v1/models`` until every expected name is listed, remembering the last problem seen."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.url = endpoint(self.params["url"], "models")
        self.expected = self.params["expected"]
        self.started = time.monotonic()
        self.result = {
            "changed": False,
            "present": [],
            "missing": list(self.expected),
            "unexpected": [],
            "ids": [],
            "waited": 0.0,
            "attempts": 0,
            "status": None,
        }
        self.problem: Callable[[float], str] | None = None  # the last problem's message, given the seconds waited
        self.names: list[str] = []

    def run(self) -> None:
        deadline = self.started + self.params["wait"]
        while True:
            if self.attempt():
                self.module.exit_json(**self.finish())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.params["interval"], remaining))
        self.fail(self.problem or self.missing_message)

    def attempt(self) -> bool:
        """One request; True when every expected name is listed. Fails at once for a key or a 404."""
        self.result["attempts"] += 1
        self.result["status"] = None
        try:
            self.fetch()
        except AuthRejected as err:
            self.result["status"] = err.status
            self.fail(fixed(self.auth_message(err)))
        except HttpError as err:
            self.result["status"] = err.status
            if err.status == 404:
                self.fail(fixed(f"{self.url} answered HTTP 404: is this an OpenAI-compatible server?"))
            message = f"{self.url} answered HTTP {err.status}: {err.excerpt}"
            if err.status < 500 and err.status not in RETRIED_STATUSES:
                self.fail(fixed(message))
            self.problem = fixed(message)
        except NotJson as err:
            self.result["status"] = err.status
            self.problem = fixed(str(err))
        except ServerNotAnswering as err:
            reason = err.reason
            self.problem = lambda waited: f"{self.url} is not answering after {waited:g} s: {reason}"
        else:
            self.problem = None
            return not self.result["missing"]
        return False

    def fetch(self) -> None:
        """GET the listing and record what it lists."""
        answer = get_json(self.url, timeout=self.params["timeout"], **connection_options(self.params))
        self.result["status"] = answer.status
        ids, self.names = listed_names(self.url, answer)
        listed = {canonical(name) for name in self.names}
        wanted = {canonical(name) for name in self.expected}
        self.result["ids"] = ids
        self.result["present"] = [name for name in self.expected if canonical(name) in listed]
        self.result["missing"] = [name for name in self.expected if canonical(name) not in listed]
        self.result["unexpected"] = sorted({name for name in self.names if canonical(name) not in wanted})

    def auth_message(self, err: AuthRejected) -> str:
        message = f"{self.url} refused the API key (HTTP {err.status})"
        return message if self.params["api_key"] else f"{message}: no api_key was given"

    def missing_message(self, waited: float) -> str:
        listed = ", ".join(self.names) or "none"
        missing = ", ".join(self.result["missing"])
        return f"models missing from {self.url} after {waited:g} s: {missing} (listed: {listed})"

    def finish(self) -> dict:
        self.result["waited"] = round(time.monotonic() - self.started, 2)
        return self.result

    def fail(self, message: Callable[[float], str]) -> None:
        """Fail with ``message(waited)`` and every return value."""
        result = self.finish()
        self.module.fail_json(msg=message(result["waited"]), **result)


def argument_spec() -> dict:
    """The options, as DOCUMENTATION describes them (a unit test keeps the two in step)."""
    return {
        "url": {"type": "str", "required": True},
        "expected": {"type": "list", "elements": "str", "required": True},
        "wait": {"type": "float", "default": 120},
        "interval": {"type": "float", "default": 2},
        "timeout": {"type": "float", "default": 10},
        **connection_argument_spec(),
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    for name in ("wait", "interval"):
        if module.params[name] < 0:
            module.fail_json(msg=f"{name} must be 0 or more seconds, not {module.params[name]:g}")
    if module.params["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be more than 0 seconds, not {module.params['timeout']:g}")
    Registration(module).run()


if __name__ == "__main__":
    main()
