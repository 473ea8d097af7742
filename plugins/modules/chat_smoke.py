#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.chat_smoke module: one real chat completion, checked the way a client library reads it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: chat_smoke
author: labai
version_added: "0.1.0"
short_description: Send one chat completion to an OpenAI-compatible server and check the answer
description:
  - Sends one C(POST /v1/chat/completions) to a vLLM, llama.cpp, Ollama or LiteLLM server, streamed
    (server-sent events) or not, checks the answer the way a client library reads it, and returns its
    content, timings and the LiteLLM routing headers as data.
  - "A stream must answer HTTP 200 with a C(Content-Type) starting with C(text/event-stream); every line is
    blank, a comment (C(:)) or an SSE field (C(data), C(event), C(id), C(retry)); every C(data) payload but
    the final C(data: [DONE]) is a JSON C(chat.completion.chunk); the first delta carries the role
    C(assistant); at least one delta carries content; a chunk carries a C(finish_reason) (see
    O(require_finish_reason)); only blank lines follow C([DONE])."
  - "A stream that ends or is cut before C(data: [DONE]), or that carries an error event
    (C({\"error\": ...}) with HTTP 200), fails, as does a first token slower than O(timeout)."
  - "Without streaming the answer must be a JSON C(chat.completion) whose C(choices[0].message) has the role
    C(assistant) and string content, with C(usage) giving C(prompt_tokens) and C(completion_tokens)."
  - O(expect_content), O(expect_model_group) and O(expect_fallback) then assert what was served.
  - Only reads from the server (a chat completion changes nothing there); it never reports C(changed).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - labai.llm_stack.openai_connection
attributes:
  check_mode:
    support: full
    details: The request changes nothing on the server, so the module sends it and checks it in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description:
      - Base URL of the OpenAI-compatible server, such as V(http://127.0.0.1:4000).
      - C(/v1/chat/completions) is appended; a URL that already ends with C(/v1) only gets
        C(/chat/completions).
    type: str
    required: true
  model:
    description: The model name (or alias, or a name matching a LiteLLM wildcard route) to ask.
    type: str
    required: true
  messages:
    description: The chat messages, each with C(role) and C(content).
    type: list
    elements: dict
    default: [{role: user, content: Say hello.}]
  max_tokens:
    description: The most tokens to generate.
    type: int
    default: 16
  temperature:
    description: Sampling temperature; V(0) makes the answer as repeatable as the server allows.
    type: float
    default: 0
  stream:
    description: Ask for a server-sent event stream, and check it.
    type: bool
    default: true
  extra_body:
    description:
      - "Merged into the request JSON, such as V({\"stream_options\": {\"include_usage\": true}}) or
        V({\"max_completion_tokens\": 8}). It may not set C(stream); use O(stream)."
    type: dict
    default: {}
  require_finish_reason:
    description:
      - Require a C(finish_reason) in some chunk of a stream (or in C(choices[0]) of a plain answer).
      - Set V(false) against LiteLLM, which sometimes sends stream chunks without one.
    type: bool
    default: true
  expect_content:
    description: A regular expression the content must match (Python C(re.search)).
    type: str
  expect_model_group:
    description: The value the C(x-litellm-model-group) response header must have.
    type: str
  expect_fallback:
    description:
      - V(true) requires C(x-litellm-attempted-fallbacks) of 1 or more; V(false) requires it absent or 0.
      - Unset (V(null)), fallbacks are reported but not asserted.
    type: bool
  timeout:
    description:
      - Socket timeout of each read, in seconds. A first token (or, without streaming, an answer) that takes
        longer fails with a message saying so; so does a stream that stalls this long.
    type: float
    default: 60
notes:
  - Uses only the Python standard library and Ansible's C(open_url) on the target host.
  - The return values are also returned on failure, as far as they are known.
seealso:
  - module: labai.llm_stack.model_registration
"""

EXAMPLES = r"""
- name: Stream a chat completion from vLLM
  labai.llm_stack.chat_smoke:
    url: http://127.0.0.1:8001
    api_key: "{{ llm_stack_vllm_api_key }}"
    model: qwen-coder
  register: __vllm_smoke

- name: Report the time to first token
  ansible.builtin.debug:
    msg: "{{ __vllm_smoke.ttft }} s to the first token, {{ __vllm_smoke.total_time }} s in all"

- name: The gateway serves qwen-coder from its fallback while vLLM is down
  labai.llm_stack.chat_smoke:
    url: http://127.0.0.1:4000
    api_key: "{{ llm_stack_litellm_master_key }}"
    model: qwen-coder
    require_finish_reason: false
    expect_model_group: qwen-coder-ollama
    expect_fallback: true

- name: A plain (not streamed) completion whose content names the model
  labai.llm_stack.chat_smoke:
    url: http://127.0.0.1:11434/v1
    model: qwen2.5-coder:7b
    stream: false
    messages:
      - {role: system, content: Answer in one word.}
      - {role: user, content: "Which language is Python written in?"}
    expect_content: "(?i)\\bc\\b"
"""

RETURN = r"""
status:
  description: HTTP status of the answer; V(null) when there was none.
  returned: always
  type: int
  sample: 200
stream:
  description: Whether the answer was streamed (O(stream)).
  returned: always
  type: bool
  sample: true
ttft:
  description:
    - Seconds from sending the request to the first non-empty content delta, rounded to 0.001.
    - Without streaming, the same as RV(total_time).
  returned: when content arrived
  type: float
  sample: 0.142
total_time:
  description: "Seconds from sending the request to C(data: [DONE]) (or the end of a plain answer), rounded to 0.001."
  returned: always
  type: float
  sample: 0.513
chunks:
  description: How many JSON chunks the stream carried (V(1) for a plain answer).
  returned: always
  type: int
  sample: 7
content:
  description: The generated text (of choice 0).
  returned: always
  type: str
  sample: Hello! How can I help you today?
content_length:
  description: Characters in RV(content).
  returned: always
  type: int
  sample: 32
model:
  description: The C(model) field of the answer (the backend's model name behind an alias).
  returned: when known
  type: str
  sample: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ
finish_reason:
  description: The last C(finish_reason) of choice 0; V(null) when none came.
  returned: always
  type: str
  sample: length
usage:
  description: The C(usage) object of the answer (of a stream, the chunk carrying it), or V(null).
  returned: always
  type: dict
  sample: {prompt_tokens: 12, completion_tokens: 16, total_tokens: 28}
id:
  description: The C(id) of the completion.
  returned: when known
  type: str
  sample: chatcmpl-5c7d0e6f0a0b4d0c
routing:
  description:
    - Every C(x-litellm-*) response header, named without the prefix, lowercase, dashes as underscores.
    - Empty for a server that is not LiteLLM.
  returned: always
  type: dict
  sample: {model_group: qwen-coder, attempted_fallbacks: "0", attempted_retries: "0", model_id: 3f1e...}
model_group:
  description: The C(x-litellm-model-group) header; V(null) without it.
  returned: always
  type: str
  sample: qwen-coder
attempted_fallbacks:
  description: The C(x-litellm-attempted-fallbacks) header as a number; V(0) without it.
  returned: always
  type: int
  sample: 0
fallback_used:
  description: Whether RV(attempted_fallbacks) is 1 or more.
  returned: always
  type: bool
  sample: false
"""

import json
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labai.llm_stack.plugins.module_utils.openai_client import (
    AnswerTimeout,
    AuthRejected,
    BadStream,
    HttpError,
    NotJson,
    ServerNotAnswering,
    connection_argument_spec,
    connection_options,
    endpoint,
    excerpt,
    post_json,
    stream_chat,
)

ROUTING_PREFIX = "x-litellm-"
DEFAULT_MESSAGES = [{"role": "user", "content": "Say hello."}]
NO_FINISH_REASON = "no chunk carried a finish_reason (set require_finish_reason: false for LiteLLM, which may omit it)"


def routing_of(headers: dict) -> dict:
    """The ``x-litellm-*`` headers, named without the prefix, dashes as underscores."""
    return {
        name[len(ROUTING_PREFIX) :].replace("-", "_"): value
        for name, value in headers.items()
        if name.startswith(ROUTING_PREFIX)
    }


def first_choice(answer: dict) -> dict | None:
    """Choice 0 of a chunk or an answer."""
    for choice in answer.get("choices") or []:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


class ChatSmoke:
    """Send the completion, check the answer, assert the expectations; every return value is kept in result."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.url = endpoint(self.params["url"], "chat/completions")
        self.started = time.monotonic()
        self.result = {
            "changed": False,
            "status": None,
            "stream": self.params["stream"],
            "ttft": None,
            "total_time": None,
            "chunks": 0,
            "content": "",
            "content_length": 0,
            "model": None,
            "finish_reason": None,
            "usage": None,
            "id": None,
            "routing": {},
            "model_group": None,
            "attempted_fallbacks": 0,
            "fallback_used": False,
        }

    def run(self) -> None:
        self.started = time.monotonic()
        options = {"timeout": self.params["timeout"], **connection_options(self.params)}
        try:
            if self.params["stream"]:
                stream = stream_chat(self.url, self.request_body(), **options)
                self.record_stream(stream)
                self.check_stream(stream)
            else:
                answer = post_json(self.url, self.request_body(), **options)
                self.record_answer(answer)
                self.check_answer(answer)
        except AuthRejected as err:
            self.record_headers(err.status, err.headers)
            message = f"{self.url} refused the API key (HTTP {err.status})"
            self.fail(message if self.params["api_key"] else f"{message}: no api_key was given")
        except (HttpError, NotJson) as err:
            self.record_headers(err.status, err.headers)
            self.fail(str(err))
        except (BadStream, AnswerTimeout) as err:
            if err.partial is not None:
                self.record_stream(err.partial)
            self.fail(str(err))
        except ServerNotAnswering as err:
            self.fail(str(err))
        self.check_expectations()
        self.module.exit_json(**self.result)

    def request_body(self) -> dict:
        body = {
            "model": self.params["model"],
            "messages": self.params["messages"],
            "max_tokens": self.params["max_tokens"],
            "temperature": self.params["temperature"],
            "stream": self.params["stream"],
        }
        body.update(self.params["extra_body"])
        return body

    # -- what the answer says ---------------------------------------------------------------------

    def record_headers(self, status: int | None, headers: dict) -> None:
        routing = routing_of(headers)
        try:
            fallbacks = int(routing.get("attempted_fallbacks", 0))
        except ValueError:
            fallbacks = 0
        self.result.update(
            status=status,
            routing=routing,
            model_group=routing.get("model_group"),
            attempted_fallbacks=fallbacks,
            fallback_used=fallbacks >= 1,
        )

    def record_stream(self, stream) -> None:
        """The answer's fields from the chunks read so far (all of them once the stream is complete)."""
        self.record_headers(stream.status, stream.headers)
        for chunk in stream.chunks:
            self.result["id"] = self.result["id"] or chunk.get("id")
            self.result["model"] = self.result["model"] or chunk.get("model")
            if isinstance(chunk.get("usage"), dict):
                self.result["usage"] = chunk["usage"]
            choice = first_choice(chunk)
            if choice and choice.get("finish_reason"):
                self.result["finish_reason"] = choice["finish_reason"]
        self.record_times(stream.ttft, stream.total_time)
        self.record_content(stream.content, len(stream.chunks))

    def record_answer(self, answer) -> None:
        self.record_headers(answer.status, answer.headers)
        data = answer.data if isinstance(answer.data, dict) else {}
        choice = first_choice(data) or {}
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        content = message.get("content")
        self.result.update(
            id=data.get("id"),
            model=data.get("model"),
            usage=data.get("usage") if isinstance(data.get("usage"), dict) else None,
            finish_reason=choice.get("finish_reason"),
        )
        self.record_times(answer.elapsed, answer.elapsed)
        self.record_content(content if isinstance(content, str) else "", 1)

    def record_times(self, ttft: float | None, total_time: float | None) -> None:
        if total_time is None:
            total_time = time.monotonic() - self.started
        self.result["ttft"] = None if ttft is None else round(ttft, 3)
        self.result["total_time"] = round(total_time, 3)

    def record_content(self, content: str, chunks: int) -> None:
        self.result.update(content=content, content_length=len(content), chunks=chunks)

    # -- protocol checks --------------------------------------------------------------------------

    def check_stream(self, stream) -> None:
        """Each chunk a chat.completion.chunk, the first delta from the assistant, content, a finish_reason."""
        first_delta = None
        for number, chunk in enumerate(stream.chunks, 1):
            if chunk.get("object") != "chat.completion.chunk":
                self.fail(f"chunk {number} has object {chunk.get('object')!r}, expected 'chat.completion.chunk'")
            choice = first_choice(chunk)
            if first_delta is None and choice and isinstance(choice.get("delta"), dict):
                first_delta = choice["delta"]
                if first_delta.get("role") != "assistant":
                    self.fail(f"first delta has no assistant role: chunk {number} has delta {json.dumps(first_delta)}")
        if not stream.content:
            reason = self.result["finish_reason"]
            self.fail(f"no content delta in {len(stream.chunks)} chunks (finish_reason {reason!r})")
        if self.params["require_finish_reason"] and not self.result["finish_reason"]:
            self.fail(NO_FINISH_REASON)

    def check_answer(self, answer) -> None:
        """A chat.completion with an assistant message of string content, and token usage."""
        data = answer.data
        if answer.status != 200:
            self.fail(f"HTTP {answer.status} from {self.url}: {excerpt(json.dumps(data))}")
        if not isinstance(data, dict):
            self.fail(f"{self.url} answered JSON that is not an object: {excerpt(json.dumps(data))}")
        if "error" in data:
            error = data["error"]
            self.fail(
                f"the answer carried an error: {error.get('message', error) if isinstance(error, dict) else error}"
            )
        if data.get("object") != "chat.completion":
            self.fail(f"the answer has object {data.get('object')!r}, expected 'chat.completion'")
        choice = first_choice(data)
        message = choice.get("message") if choice else None
        if not isinstance(message, dict) or message.get("role") != "assistant":
            self.fail(f"choices[0].message has no assistant role: {excerpt(json.dumps(message))}")
        if not isinstance(message.get("content"), str):
            self.fail(f"choices[0].message.content is not a string: {excerpt(json.dumps(message.get('content')))}")
        usage = data.get("usage")
        if not isinstance(usage, dict) or not all(
            isinstance(usage.get(k), int) for k in ("prompt_tokens", "completion_tokens")
        ):
            self.fail(f"the answer has no usage with prompt_tokens and completion_tokens: {excerpt(json.dumps(usage))}")
        if self.params["require_finish_reason"] and not self.result["finish_reason"]:
            self.fail(
                "choices[0] has no finish_reason (set require_finish_reason: false for LiteLLM, which may omit it)"
            )

    # -- assertions -------------------------------------------------------------------------------

    def check_expectations(self) -> None:
        group = self.params["expect_model_group"]
        served = self.result["model_group"]
        if group is not None and served != group:
            shown = repr(served) if served is not None else "none (no x-litellm-model-group header)"
            self.fail(f"model group {group!r} expected, {shown} served")
        fallback = self.params["expect_fallback"]
        if fallback is not None and fallback != self.result["fallback_used"]:
            header = self.result["routing"].get("attempted_fallbacks")
            shown = "absent" if header is None else repr(header)
            wanted = "a fallback expected" if fallback else "no fallback expected"
            self.fail(f"{wanted}, x-litellm-attempted-fallbacks is {shown} (model group {served!r} served)")
        pattern = self.params["expect_content"]
        if pattern is not None and not re.search(pattern, self.result["content"]):
            self.fail(f"content {excerpt(self.result['content'])!r} does not match {pattern!r}")

    def fail(self, message: str) -> None:
        if self.result["total_time"] is None:
            self.result["total_time"] = round(time.monotonic() - self.started, 3)
        self.module.fail_json(msg=message, **self.result)


def argument_spec() -> dict:
    """The options, as DOCUMENTATION describes them (a unit test keeps the two in step)."""
    return {
        "url": {"type": "str", "required": True},
        "model": {"type": "str", "required": True},
        "messages": {"type": "list", "elements": "dict", "default": DEFAULT_MESSAGES},
        "max_tokens": {"type": "int", "default": 16},
        "temperature": {"type": "float", "default": 0},
        "stream": {"type": "bool", "default": True},
        "extra_body": {"type": "dict", "default": {}},
        "require_finish_reason": {"type": "bool", "default": True},
        "expect_content": {"type": "str"},
        "expect_model_group": {"type": "str"},
        "expect_fallback": {"type": "bool"},
        "timeout": {"type": "float", "default": 60},
        **connection_argument_spec(),
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if "stream" in params["extra_body"]:
        module.fail_json(msg="extra_body may not set stream; use the stream option")
    if params["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be more than 0 seconds, not {params['timeout']:g}")
    if params["expect_content"] is not None:
        try:
            re.compile(params["expect_content"])
        except re.error as err:
            module.fail_json(msg=f"expect_content is not a regular expression: {err}")
    ChatSmoke(module).run()


if __name__ == "__main__":
    main()
