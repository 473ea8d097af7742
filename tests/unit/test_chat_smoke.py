# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""chat_smoke against a real local HTTP server: good streams and answers, each broken one, the assertions."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from ansible_collections.labai.llm_stack.plugins.module_utils.openai_client import excerpt
from ansible_collections.labai.llm_stack.plugins.modules.chat_smoke import NO_FINISH_REASON, main
from module_runner import run_module
from openai_test_server import ANSWER, API_KEY, CONTENT, WORDS, OpenAIServer, closed_port

TEXT = "".join(WORDS)
MODEL = "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ"
ROUTING = {
    "model_group": "lab-vllm",
    "attempted_fallbacks": "0",
    "attempted_retries": "0",
    "model_id": "3f1e2d4c",
    "model_api_base": "http://127.0.0.1:8001/v1",
    "response_cost": "0.0",
}
RESULT_KEYS = {
    "status",
    "stream",
    "ttft",
    "total_time",
    "chunks",
    "content",
    "content_length",
    "model",
    "finish_reason",
    "usage",
    "id",
    "routing",
    "model_group",
    "attempted_fallbacks",
    "fallback_used",
    "changed",
}
TIMEOUT = 0.5


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def smoke(capsys, server: OpenAIServer, scenario: str, check_mode: bool = False, **options) -> dict:
    args = {"url": server.url(scenario), "model": "qwen-coder", "timeout": 2, **options}
    return run_module(main, args, capsys, check_mode)


def chat_url(server: OpenAIServer, scenario: str) -> str:
    return f"{server.url(scenario)}/v1/chat/completions"


# ---------------------------------------------------------------------------------------------------------
# Good answers


def test_good_stream(server, capsys):
    result = smoke(capsys, server, "chat")
    assert "failed" not in result, result["msg"]
    assert {key: result[key] for key in RESULT_KEYS - {"ttft", "total_time"}} == {
        "changed": False,
        "status": 200,
        "stream": True,
        "chunks": 8,
        "content": TEXT,
        "content_length": len(TEXT),
        "model": MODEL,
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
        "id": "chatcmpl-test1",
        "routing": ROUTING,
        "model_group": "lab-vllm",
        "attempted_fallbacks": 0,
        "fallback_used": False,
    }
    assert 0 < result["ttft"] <= result["total_time"]
    request = server.requests[-1]
    assert request["path"] == "/chat/v1/chat/completions"
    assert request["body"] == {
        "model": "qwen-coder",
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
        "temperature": 0,
        "stream": True,
    }
    assert request["headers"]["Accept"] == "text/event-stream"
    assert request["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in request["headers"]


def test_good_answer_without_streaming(server, capsys):
    result = smoke(capsys, server, "chat", stream=False)
    assert "failed" not in result, result["msg"]
    assert result["stream"] is False
    assert (result["chunks"], result["content"], result["content_length"]) == (1, TEXT, len(TEXT))
    assert (result["id"], result["model"], result["finish_reason"]) == ("chatcmpl-test2", MODEL, "stop")
    assert result["usage"] == ANSWER["usage"]
    assert result["routing"] == ROUTING
    assert result["ttft"] == result["total_time"] > 0
    assert server.requests[-1]["body"]["stream"] is False


def test_request_options_key_and_headers(server, capsys):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    result = smoke(
        capsys,
        server,
        "chat",
        api_key=API_KEY,
        headers={"X-Probe": "smoke"},
        messages=messages,
        max_tokens=4,
        temperature=0.5,
        extra_body={"stream_options": {"include_usage": True}, "max_tokens": 8},
    )
    assert "failed" not in result, result["msg"]
    request = server.requests[-1]
    assert request["body"] == {
        "model": "qwen-coder",
        "messages": messages,
        "max_tokens": 8,
        "temperature": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["X-Probe"] == "smoke"
    assert API_KEY not in result["raw"]


@pytest.mark.parametrize("scenario", ["sse-fields", "done-no-blank"])
def test_sse_comments_fields_crlf_and_a_last_event_without_blank_line(server, capsys, scenario):
    result = smoke(capsys, server, scenario)
    assert "failed" not in result, result["msg"]
    assert (result["content"], result["chunks"], result["finish_reason"]) == (TEXT, 7, "stop")


def test_ttft_comes_before_the_end(server, capsys):
    result = smoke(capsys, server, "slowchunks")
    assert "failed" not in result, result["msg"]
    assert 0 < result["ttft"] < result["total_time"]


def test_check_mode_still_sends_the_request(server, capsys):
    before = len(server.requests)
    result = smoke(capsys, server, "chat", check_mode=True)
    assert "failed" not in result, result["msg"]
    assert result["content"] == TEXT and result["changed"] is False
    assert len(server.requests) == before + 1


def test_no_finish_reason_allowed_when_not_required(server, capsys):
    result = smoke(capsys, server, "nofinish", require_finish_reason=False)
    assert "failed" not in result, result["msg"]
    assert result["finish_reason"] is None and result["content"] == TEXT


# ---------------------------------------------------------------------------------------------------------
# Assertions on what was served


@pytest.mark.parametrize(
    ("scenario", "options"),
    [
        ("chat", {"expect_model_group": "lab-vllm", "expect_fallback": False, "expect_content": r"^Hello from"}),
        ("fallback", {"expect_model_group": "lab-ollama", "expect_fallback": True}),
        ("plain", {"expect_fallback": False, "expect_content": "(?i)TEST SERVER"}),
        ("fallback", {"expect_fallback": True, "stream": False}),
    ],
)
def test_expectations_met(server, capsys, scenario, options):
    result = smoke(capsys, server, scenario, **options)
    assert "failed" not in result, result["msg"]


def test_fallback_reported(server, capsys):
    result = smoke(capsys, server, "fallback")
    assert (result["model_group"], result["attempted_fallbacks"], result["fallback_used"]) == ("lab-ollama", 1, True)
    assert result["routing"]["attempted_fallbacks"] == "1"


def test_no_litellm_headers(server, capsys):
    result = smoke(capsys, server, "plain")
    assert (result["routing"], result["model_group"], result["attempted_fallbacks"]) == ({}, None, 0)


@pytest.mark.parametrize(
    ("scenario", "options", "message"),
    [
        ("fallback", {"expect_model_group": "lab-vllm"}, "model group 'lab-vllm' expected, 'lab-ollama' served"),
        (
            "plain",
            {"expect_model_group": "lab-vllm"},
            "model group 'lab-vllm' expected, none (no x-litellm-model-group header) served",
        ),
        (
            "chat",
            {"expect_fallback": True},
            "a fallback expected, x-litellm-attempted-fallbacks is '0' (model group 'lab-vllm' served)",
        ),
        (
            "plain",
            {"expect_fallback": True},
            "a fallback expected, x-litellm-attempted-fallbacks is absent (model group None served)",
        ),
        (
            "fallback",
            {"expect_fallback": False},
            "no fallback expected, x-litellm-attempted-fallbacks is '1' (model group 'lab-ollama' served)",
        ),
        ("chat", {"expect_content": "Goodbye"}, f"content {TEXT!r} does not match 'Goodbye'"),
        ("chat", {"expect_content": "Goodbye", "stream": False}, f"content {TEXT!r} does not match 'Goodbye'"),
    ],
)
def test_expectations_failed(server, capsys, scenario, options, message):
    result = smoke(capsys, server, scenario, **options)
    assert result["msg"] == message
    assert result["status"] == 200 and result["content"] == TEXT
    assert RESULT_KEYS <= result.keys()


# ---------------------------------------------------------------------------------------------------------
# Broken streams


def test_wrong_content_type(server, capsys):
    url = chat_url(server, "wrongtype")
    result = smoke(capsys, server, "wrongtype")
    assert result["msg"] == (
        f"{url} answered Content-Type 'application/json', not text/event-stream: {excerpt(json.dumps(ANSWER))}"
    )
    assert result["status"] == 200 and result["chunks"] == 0


@pytest.mark.parametrize(
    ("scenario", "message", "read"),
    [
        ("malformed", "malformed event line 5 from {url}: garbage without a field name", (2, "Hello")),
        ("badjson", 'chunk 3 from {url} is not JSON: {"id": "chatcmpl-test1", "choices": [', (2, "Hello")),
        ("nodone", "the stream ended before data: [DONE] after 7 chunks", (7, TEXT)),
        ("nodone-length", "the stream ended before data: [DONE] after 6 chunks", (6, TEXT)),
        ("cut", "the stream ended before data: [DONE] after 2 chunks", (2, "Hello")),
        ("reset", "the stream ended before data: [DONE] after 2 chunks", (2, "Hello")),
        ("errorevent", "the stream carried an error event: litellm.APIConnectionError: backend died", (2, "Hello")),
        ("wrongobject", "chunk 2 has object 'chat.completion', expected 'chat.completion.chunk'", (3, "Hello")),
        ("norole", 'first delta has no assistant role: chunk 1 has delta {"content": "Hello"}', (6, TEXT)),
        ("nofinish", NO_FINISH_REASON, (6, TEXT)),
        ("nocontent", "no content delta in 2 chunks (finish_reason 'length')", (2, "")),
        ("afterdone", "{url} sent more after data: [DONE]: " + excerpt(CONTENT[0].decode()), (7, TEXT)),
    ],
)
def test_broken_stream(server, capsys, scenario, message, read):
    """``read``: the chunks and content read before the failure."""
    result = smoke(capsys, server, scenario)
    assert result["msg"] == message.replace("{url}", chat_url(server, scenario))
    assert (result["status"], result["chunks"], result["content"]) == (200, *read)
    assert result["routing"] == ROUTING
    assert RESULT_KEYS <= result.keys()


def test_slow_first_token(server, capsys):
    result = smoke(capsys, server, "slowfirst", timeout=TIMEOUT)
    assert result["msg"] == f"no first token within 0.5 s from {chat_url(server, 'slowfirst')} (after 1 chunk)"
    assert (result["status"], result["chunks"], result["ttft"]) == (200, 1, None)
    assert result["total_time"] >= TIMEOUT


def test_no_response_headers_in_time(server, capsys):
    url = chat_url(server, "slowheaders")
    result = smoke(capsys, server, "slowheaders", timeout=TIMEOUT)
    assert result["msg"] == f"no first token within 0.5 s from {url} (no response headers)"
    assert (result["status"], result["ttft"]) == (None, None)


def test_stalled_stream(server, capsys):
    result = smoke(capsys, server, "stall", timeout=TIMEOUT)
    assert result["msg"] == "the stream stalled: nothing within 0.5 s after 2 chunks"
    assert result["content"] == "Hello" and result["ttft"] is not None


# ---------------------------------------------------------------------------------------------------------
# Broken plain answers


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("html", "{url} did not answer JSON: <html><body><h1>Welcome to nginx!</h1></body></html>"),
        ("inband", "the answer carried an error: litellm.RateLimitError: no deployments available"),
        ("wrongobject", "the answer has object 'chat.completion.chunk', expected 'chat.completion'"),
        ("norole", 'choices[0].message has no assistant role: {"content": "Hi"}'),
        ("nousage", "the answer has no usage with prompt_tokens and completion_tokens: null"),
        (
            "nofinish",
            "choices[0] has no finish_reason (set require_finish_reason: false for LiteLLM, which may omit it)",
        ),
        ("slowheaders", "{url} sent no response within 0.5 s"),
    ],
)
def test_broken_answer(server, capsys, scenario, message):
    result = smoke(capsys, server, scenario, stream=False, timeout=TIMEOUT)
    assert result["msg"] == message.replace("{url}", chat_url(server, scenario))
    assert result["stream"] is False
    assert RESULT_KEYS <= result.keys()


# ---------------------------------------------------------------------------------------------------------
# HTTP errors and no server


@pytest.mark.parametrize(
    ("status", "api_key", "message"),
    [
        (401, API_KEY, "{url} refused the API key (HTTP 401)"),
        (403, None, "{url} refused the API key (HTTP 403): no api_key was given"),
        (404, None, "HTTP 404 from {url}: test error 404"),
        (500, API_KEY, "HTTP 500 from {url}: test error 500"),
    ],
)
def test_http_errors(server, capsys, status, api_key, message):
    scenario = f"status-{status}"
    for stream in (True, False):
        result = smoke(capsys, server, scenario, api_key=api_key, stream=stream)
        assert result["msg"] == message.replace("{url}", chat_url(server, scenario))
        assert (result["status"], result["stream"]) == (status, stream)
        assert result["chunks"] == 0 and result["ttft"] is None


def test_server_not_listening(capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_module(main, {"url": url, "model": "qwen-coder"}, capsys)
    assert result["msg"] == f"{url}/v1/chat/completions is not answering: [Errno 111] Connection refused"
    assert result["status"] is None
    assert RESULT_KEYS <= result.keys()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"extra_body": {"stream": False}}, "extra_body may not set stream; use the stream option"),
        ({"timeout": 0}, "timeout must be more than 0 seconds, not 0"),
        (
            {"expect_content": "("},
            "expect_content is not a regular expression: missing ), unterminated subpattern at position 0",
        ),
    ],
)
def test_invalid_options(capsys, options, message):
    result = run_module(main, {"url": "http://127.0.0.1:1", "model": "m", **options}, capsys)
    assert result["msg"] == message
