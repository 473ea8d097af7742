# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared OpenAI client: URLs, error excerpts, the exception each failure raises; module docs vs specs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from ansible_collections.labai.llm_stack.plugins.doc_fragments.openai_connection import ModuleDocFragment
from ansible_collections.labai.llm_stack.plugins.module_utils.openai_client import (
    AuthRejected,
    HttpError,
    NotJson,
    ServerNotAnswering,
    endpoint,
    error_message,
    excerpt,
    get_json,
)
from ansible_collections.labai.llm_stack.plugins.modules import chat_smoke, model_registration
from openai_test_server import MODELS, OpenAIServer, closed_port


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:4000", "http://h:4000/v1/models"),
        ("http://h:4000/", "http://h:4000/v1/models"),
        ("http://h:4000/v1", "http://h:4000/v1/models"),
        ("https://h/gateway/v1/", "https://h/gateway/v1/models"),
    ],
)
def test_endpoint(url, expected):
    assert endpoint(url, "models") == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "The model `x` does not exist.", "code": 404}}', "The model `x` does not exist."),
        (b'{"error": "Unauthorized"}', "Unauthorized"),
        (b'{"object": "error", "message": "bad request"}', "bad request"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b"404 page not found\n", "404 page not found"),
        (b"[1, 2]", "[1, 2]"),
        (b"\xff\xfe broken", "\ufffd\ufffd broken"),
    ],
)
def test_error_message(body, message):
    assert error_message(body) == message


def test_excerpt_is_one_short_line():
    assert excerpt("a\n  b\tc") == "a b c"
    assert excerpt("x" * 300) == "x" * 197 + "..."


def test_get_json(server):
    answer = get_json(f"{server.url('models')}/v1/models", timeout=2)
    assert (answer.status, answer.data["data"]) == (200, MODELS)
    assert answer.headers["content-type"] == "application/json"
    assert answer.elapsed > 0


@pytest.mark.parametrize(
    ("scenario", "kind", "status"),
    [("status-401", AuthRejected, 401), ("status-403", AuthRejected, 403), ("status-503", HttpError, 503)],
)
def test_http_errors(server, scenario, kind, status):
    url = f"{server.url(scenario)}/v1/models"
    with pytest.raises(HttpError) as err:
        get_json(url, timeout=2)
    assert type(err.value) is kind
    assert (err.value.status, err.value.excerpt, err.value.url) == (status, f"test error {status}", url)
    assert err.value.headers["content-type"] == "application/json"


def test_not_json(server):
    url = f"{server.url('html')}/v1/models"
    with pytest.raises(NotJson) as err:
        get_json(url, timeout=2)
    assert str(err.value) == f"{url} did not answer JSON: <html><body><h1>Welcome to nginx!</h1></body></html>"
    assert err.value.status == 200


def test_not_answering():
    url = f"http://127.0.0.1:{closed_port()}/v1/models"
    with pytest.raises(ServerNotAnswering) as err:
        get_json(url, timeout=2)
    assert err.value.reason == "[Errno 111] Connection refused"
    assert str(err.value) == f"{url} is not answering: [Errno 111] Connection refused"


@pytest.mark.parametrize("module", [model_registration, chat_smoke], ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_documentation_matches_argument_spec(module):
    """Every option documented with the type, default, required and elements the code uses, and no other."""
    documented = (
        yaml.safe_load(module.DOCUMENTATION)["options"] | yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    )
    spec = module.argument_spec()
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        doc = documented[name]
        assert doc["type"] == option["type"], name
        assert doc.get("default") == option.get("default"), name
        assert doc.get("required", False) == option.get("required", False), name
        assert doc.get("elements") == option.get("elements"), name
        assert option.get("no_log", False) == (name == "api_key"), name
