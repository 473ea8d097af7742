# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared OpenAI client: URLs, error excerpts, the exception each failure raises; module docs vs specs.

And servers that misbehave on purpose: each bound, the deadline and the refusal of redirects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml
from ansible_collections.labai.llm_stack.plugins.doc_fragments.openai_connection import ModuleDocFragment
from ansible_collections.labai.llm_stack.plugins.module_utils.openai_client import (
    AnswerTimeout,
    AuthRejected,
    BadStream,
    BodyTooLarge,
    DeadlineExceeded,
    HttpError,
    NotJson,
    Redirected,
    ServerNotAnswering,
    endpoint,
    error_message,
    excerpt,
    get_json,
    post_json,
    stream_chat,
)
from ansible_collections.labai.llm_stack.plugins.modules import chat_smoke, model_registration
from openai_test_server import API_KEY, MODELS, OpenAIServer, closed_port, huge_listing

DEADLINE = 0.3  # the drips last DRIP_FOR (2 s), a byte every 0.05 s: only a deadline ends them sooner
MARGIN = 0.5
CHAT = {"model": "qwen-coder", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
REQUESTS = {
    "get": get_json,
    "post": lambda url, **options: post_json(url, CHAT, **options),
    "stream": lambda url, **options: stream_chat(url, {**CHAT, "stream": True}, **options),
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def other() -> Iterator[OpenAIServer]:
    """A second server, on another port: where the redirects point, and where no request may arrive."""
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


# ---------------------------------------------------------------------------------------------------------
# Servers that misbehave: each fails the call at its bound, and in time


@pytest.mark.parametrize(
    ("scenario", "message"),
    [("driphead", "{url} sent no response within 0.3 s"), ("drip", "{url} sent no complete answer within 0.3 s")],
)
@pytest.mark.parametrize(
    "times", [{"timeout": 1, "deadline": DEADLINE}, {"timeout": DEADLINE}], ids=["deadline", "timeout"]
)
def test_slow_drip_fails_at_the_deadline(server, scenario, message, times):
    """A byte every 0.05 s restarts the socket timeout forever; a JSON call's deadline (its timeout unless
    given) ends it, in the headers as in the body."""
    url = f"{server.url(scenario)}/v1/models"
    started = time.monotonic()
    with pytest.raises(AnswerTimeout) as err:
        get_json(url, **times)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert str(err.value) == message.replace("{url}", url)


@pytest.mark.parametrize(
    ("scenario", "message", "chunks"),
    [
        ("drip", "the stream from {url} was not done within the deadline of 0.3 s (after 1 chunk)", 1),
        ("driphead", "{url} sent no response headers within the deadline of 0.3 s", None),
    ],
)
def test_slow_drip_stream_fails_at_the_deadline(server, scenario, message, chunks):
    url = f"{server.url(scenario)}/v1/chat/completions"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as err:
        stream_chat(url, {**CHAT, "stream": True}, timeout=1, deadline=DEADLINE)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert str(err.value) == message.replace("{url}", url)
    assert err.value.reason == "not done within the deadline of 0.3 s"
    if chunks is None:
        assert err.value.partial is None
    else:
        assert len(err.value.partial.chunks) == chunks


@pytest.mark.parametrize(
    ("scenario", "limits", "message", "chunks"),
    [
        ("endless", {"max_chunks": 50}, "{url} sent more than 50 chunks, the limit of a stream", 50),
        ("endless", {"max_content": 100}, "{url} sent content over the limit of 100 characters (after 22 chunks)", 22),
        (
            "endless-comments",
            {"max_stream": 64 * 1024},
            "{url} sent a stream over the limit of 64 KiB (after 1 chunk)",
            1,
        ),
        ("endless-line", {}, "{url} sent line 3 of the stream over the limit of 64 KiB (after 1 chunk)", 1),
    ],
)
def test_endless_stream_fails_at_its_bound(server, scenario, limits, message, chunks):
    """The server streams (20 MiB) until the client hangs up; the client hangs up at its bound."""
    url = f"{server.url(scenario)}/v1/chat/completions"
    with pytest.raises(BadStream) as err:
        stream_chat(url, {**CHAT, "stream": True}, timeout=2, **limits)
    assert str(err.value) == message.replace("{url}", url)
    assert len(err.value.partial.chunks) == chunks


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("hugebody", "{url} announced an answer of {length} bytes over the limit of 8 MiB"),
        ("hugechunked", "{url} sent an answer over the limit of 8 MiB"),
    ],
)
def test_huge_body_fails_at_its_bound(server, scenario, message):
    """A valid listing of 9 MiB: refused on its Content-Length, or once 8 MiB have been read without one."""
    url = f"{server.url(scenario)}/v1/models"
    with pytest.raises(BodyTooLarge) as err:
        get_json(url, timeout=2)
    assert str(err.value) == message.format(url=url, length=len(huge_listing()))
    assert (err.value.status, err.value.limit) == (200, 8 * 1024 * 1024)


def test_huge_error_body_is_read_only_as_far_as_its_excerpt(server):
    """An error body without end: its first 64 KiB make the excerpt; the rest is never read."""
    with pytest.raises(HttpError) as err:
        get_json(f"{server.url('hugeerror')}/v1/models", timeout=2)
    assert (err.value.status, err.value.excerpt) == (500, "x" * 197 + "...")


@pytest.mark.parametrize(
    ("status", "call"),
    [(301, "get"), (302, "get"), (303, "get"), (307, "get"), (308, "get"), (307, "post"), (308, "stream")],
)
def test_no_redirect_is_followed(server, other, status, call):
    """A redirect to another address fails, naming it; that address never hears of the request or the key."""
    port = other.server_address[1]
    api = "models" if call == "get" else "chat/completions"
    url = f"{server.url(f'redirect-{status}-{port}')}/v1/{api}"
    with pytest.raises(Redirected) as err:
        REQUESTS[call](url, timeout=2, api_key=API_KEY)
    location = f"http://127.0.0.1:{port}/{'models' if call == 'get' else 'chat'}/v1/{api}"
    assert (
        str(err.value)
        == f"HTTP {status} from {url}: redirect to {location} not followed (no redirect is: give the final URL)"
    )
    assert (err.value.status, err.value.location) == (status, location)
    assert other.requests == []
    assert server.requests[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"  # the key went where it was sent


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
