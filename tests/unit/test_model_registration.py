# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""model_registration against a real local HTTP server: listings, polling, and every failure message."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from ansible_collections.labai.llm_stack.plugins.modules.model_registration import main
from module_runner import run_module
from openai_test_server import API_KEY, OpenAIServer, closed_port

FAST = {"wait": 1, "interval": 0.05, "timeout": 2}
RESULT_KEYS = {"present", "missing", "unexpected", "ids", "waited", "attempts", "status", "changed"}
IDS = ["qwen-coder", "qwen-math", "tiny-llama:latest", "qwen-coder-native"]
SECONDS = r"\d+(\.\d+)?"


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


def register(capsys, url: str, expected: list[str], check_mode: bool = False, **options) -> dict:
    return run_module(main, {"url": url, "expected": expected, **FAST, **options}, capsys, check_mode)


def test_every_name_listed_ids_aliases_and_ollama_tags(server, capsys):
    expected = ["qwen-math", "tiny-llama", "qwen-native", "qwen-coder"]
    result = register(capsys, server.url("models"), expected)
    assert "failed" not in result, result["msg"]
    assert result["present"] == expected
    assert result["missing"] == []
    assert result["unexpected"] == ["coder", "qwen-coder-native"]
    assert result["ids"] == IDS
    assert result["attempts"] == 1
    assert result["status"] == 200
    assert result["changed"] is False
    assert isinstance(result["waited"], float) and result["waited"] < 1
    assert server.requests[-1]["path"] == "/models/v1/models"
    assert "Authorization" not in server.requests[-1]["headers"]


@pytest.mark.parametrize(
    ("suffix", "path"),
    [
        ("", "/models/v1/models"),
        ("/", "/models/v1/models"),
        ("/v1", "/models/v1/models"),
        ("/v1/", "/models/v1/models"),
    ],
)
def test_url_with_or_without_v1(server, capsys, suffix, path):
    result = register(capsys, server.url("models") + suffix, ["qwen-coder"])
    assert result["present"] == ["qwen-coder"]
    assert server.requests[-1]["path"] == path


def test_empty_expected_only_checks_the_listing(server, capsys):
    result = register(capsys, server.url("models"), [])
    assert "failed" not in result
    assert (result["present"], result["missing"]) == ([], [])
    assert result["unexpected"] == sorted([*IDS, "qwen-native", "coder"])


def test_check_mode_still_asks_the_server(server, capsys):
    before = len(server.requests)
    result = register(capsys, server.url("models"), ["qwen-coder"], check_mode=True)
    assert "failed" not in result
    assert result["present"] == ["qwen-coder"] and result["ids"] == IDS
    assert len(server.requests) == before + 1


def test_api_key_sent_as_bearer_and_never_printed(server, capsys):
    result = register(capsys, server.url("auth"), ["qwen-coder"], api_key=API_KEY, headers={"X-Probe": "1"})
    assert "failed" not in result, result["msg"]
    assert server.requests[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert server.requests[-1]["headers"]["X-Probe"] == "1"
    assert API_KEY not in result["raw"]


def test_models_that_appear_later_are_waited_for(server, capsys):
    result = register(capsys, server.url("late-ok"), ["qwen-coder", "tiny-llama:latest"], wait=5, interval=0.1)
    assert "failed" not in result, result["msg"]
    assert result["attempts"] == 3
    assert result["present"] == ["qwen-coder", "tiny-llama:latest"]
    assert result["waited"] >= 0.2


def test_a_starting_server_answering_503_is_waited_for(server, capsys):
    result = register(capsys, server.url("starting-ok"), ["qwen-coder"], wait=5, interval=0.1)
    assert "failed" not in result, result["msg"]
    assert (result["attempts"], result["status"]) == (3, 200)


def test_missing_after_the_deadline(server, capsys):
    url = server.url("late-never")
    result = register(capsys, url, ["qwen-coder"], wait=0.5, interval=1)  # the last attempt at the deadline
    assert result["failed"] is True
    assert re.fullmatch(
        rf"models missing from {url}/v1/models after {SECONDS} s: qwen-coder \(listed: none\)", result["msg"]
    )
    assert result["attempts"] == 2
    assert result["present"] == [] and result["missing"] == ["qwen-coder"] and result["ids"] == []
    assert RESULT_KEYS <= result.keys()


def test_missing_names_the_listed_names(server, capsys):
    url = server.url("models")
    result = register(capsys, url, ["qwen-coder", "gone", "tiny-llama"], wait=0)
    assert result["msg"] == (
        f"models missing from {url}/v1/models after {result['waited']:g} s: gone "
        "(listed: qwen-coder, qwen-math, tiny-llama:latest, qwen-coder-native, qwen-native, coder)"
    )
    assert result["present"] == ["qwen-coder", "tiny-llama"]
    assert result["missing"] == ["gone"]
    assert result["attempts"] == 1


def test_wait_zero_is_one_attempt(server, capsys):
    result = register(capsys, server.url("late-once"), ["qwen-coder"], wait=0, interval=5)
    assert result["failed"] is True
    assert result["attempts"] == 1
    assert result["waited"] < 1


@pytest.mark.parametrize(("status", "api_key", "tail"), [(401, API_KEY, ""), (403, None, ": no api_key was given")])
def test_refused_key_fails_at_once(server, capsys, status, api_key, tail):
    url = server.url(f"status-{status}")
    result = register(capsys, url, ["qwen-coder"], wait=30, api_key=api_key)
    assert result["msg"] == f"{url}/v1/models refused the API key (HTTP {status}){tail}"
    assert (result["attempts"], result["status"]) == (1, status)
    assert result["waited"] < 5
    assert RESULT_KEYS <= result.keys()


def test_missing_key_against_a_keyed_server(server, capsys):
    url = server.url("auth")
    result = register(capsys, url, ["qwen-coder"], wait=30)
    assert result["msg"] == f"{url}/v1/models refused the API key (HTTP 401): no api_key was given"


def test_404_fails_at_once(server, capsys):
    url = server.url("status-404")
    result = register(capsys, url, ["qwen-coder"], wait=30)
    assert result["msg"] == f"{url}/v1/models answered HTTP 404: is this an OpenAI-compatible server?"
    assert (result["attempts"], result["status"]) == (1, 404)


def test_other_4xx_fails_at_once(server, capsys):
    url = server.url("status-400")
    result = register(capsys, url, ["qwen-coder"], wait=30)
    assert result["msg"] == f"{url}/v1/models answered HTTP 400: test error 400"
    assert result["attempts"] == 1


def test_5xx_is_polled_until_the_deadline(server, capsys):
    url = server.url("status-503")
    result = register(capsys, url, ["qwen-coder"], wait=1, interval=0.05)
    assert result["msg"] == f"{url}/v1/models answered HTTP 503: test error 503"
    assert result["attempts"] >= 3
    assert result["status"] == 503
    assert result["waited"] >= 1


def test_not_json(server, capsys):
    url = server.url("html")
    result = register(capsys, url, ["qwen-coder"], wait=1, interval=0.05)
    assert result["msg"] == f"{url}/v1/models did not answer JSON: <html><body><h1>Welcome to nginx!</h1></body></html>"
    assert result["status"] == 200 and result["attempts"] >= 2


def test_json_without_data(server, capsys):
    url = server.url("nodata")
    result = register(capsys, url, ["qwen-coder"], wait=0)
    assert result["msg"] == f"{url}/v1/models answered JSON without a 'data' list: {{'object': 'list', 'models': []}}"


def test_ollama_null_data_lists_nothing(server, capsys):
    url = server.url("nulldata")
    result = register(capsys, url, ["tiny-llama"], wait=0)
    assert (
        result["msg"] == f"models missing from {url}/v1/models after {result['waited']:g} s: tiny-llama (listed: none)"
    )
    assert result["status"] == 200 and result["ids"] == []


def test_server_not_listening(capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    result = register(capsys, url, ["qwen-coder"], wait=1, interval=0.05)
    assert re.fullmatch(
        rf"{url}/v1/models is not answering after {SECONDS} s: \[Errno 111\] Connection refused", result["msg"]
    )
    assert result["status"] is None and result["attempts"] >= 2
    assert RESULT_KEYS <= result.keys()


def test_server_answering_too_slowly(server, capsys):
    url = server.url("slowheaders")
    result = register(capsys, url, ["qwen-coder"], wait=0, timeout=0.2)
    assert re.fullmatch(rf"{url}/v1/models is not answering after {SECONDS} s: no response within 0.2 s", result["msg"])


def test_last_problem_is_reported(server, capsys):
    """Listed without the model, then HTTP 503: the message names the 503, the listing is kept."""
    url = server.url("degrading-t1")
    result = register(capsys, url, ["absent"], wait=0.2, interval=0.05)
    assert result["msg"] == f"{url}/v1/models answered HTTP 503: backend crashed"
    assert result["status"] == 503
    assert result["ids"] == IDS and result["missing"] == ["absent"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"wait": -1}, "wait must be 0 or more seconds, not -1"),
        ({"interval": -0.5}, "interval must be 0 or more seconds, not -0.5"),
        ({"timeout": 0}, "timeout must be more than 0 seconds, not 0"),
    ],
)
def test_invalid_durations(capsys, options, message):
    result = run_module(main, {"url": "http://127.0.0.1:1", "expected": [], **options}, capsys)
    assert result["msg"] == message
