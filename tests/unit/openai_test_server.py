# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real HTTP server on 127.0.0.1 that answers like an OpenAI-compatible server, well or broken.

The first path segment picks the behaviour: ``GET /<scenario>/v1/models`` and
``POST /<scenario>/v1/chat/completions``, so ``server.url("nodone")`` is the base URL a module is given.
``status-<code>`` answers that status on both paths, with an OpenAI error body. A scenario ending in
``-<tag>`` counts its requests under its whole name, so each test gets a fresh count (``late-t1``).
``serving`` lists the models and answers chat completions; each scenario of ``UNSERVED`` lists them and
fails every chat completion, as a real server that started but cannot serve.

Streams are written the way vLLM and LiteLLM write them: chunked transfer encoding, one
``data: <json>`` event per chunk, a first delta with the role, content deltas, a finish_reason and
``data: [DONE]``. Every request is recorded in ``server.requests``.

Hostile servers too: ``drip`` sends its answer (``driphead``: its headers) one byte every ``DRIP_STEP``
seconds for ``DRIP_FOR`` seconds, then completes it; ``endless*`` streams (and ``hugeerror`` an error body)
without end, until the client hangs up or ``ENDLESS_BYTES`` have gone; ``hugebody`` and ``hugechunked``
answer a valid JSON listing of ``HUGE_BYTES``; ``redirect-<status>-<port>`` redirects to the ``models`` or
``chat`` scenario of the server on that port. Each completes in the end, so that a client without bounds
fails its test rather than hanging it.

Also here: ``run_module``, which runs a module's ``main()`` with arguments and returns its result.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = [
    {"id": "qwen-coder", "object": "model", "created": 1700000000, "owned_by": "vllm"},
    {"id": "qwen-math", "object": "model", "created": 1700000000, "owned_by": "vllm"},
    {"id": "tiny-llama:latest", "object": "model", "created": 1700000000, "owned_by": "library"},
    {"id": "qwen-coder-native", "object": "model", "owned_by": "llamacpp", "aliases": ["qwen-native", "coder"]},
]
ROUTING = {
    "x-litellm-model-group": "lab-vllm",
    "x-litellm-attempted-fallbacks": "0",
    "x-litellm-attempted-retries": "0",
    "x-litellm-model-id": "3f1e2d4c",
    "x-litellm-model-api-base": "http://127.0.0.1:8001/v1",
    "x-litellm-response-cost": "0.0",
}
FALLBACK_ROUTING = {**ROUTING, "x-litellm-model-group": "lab-ollama", "x-litellm-attempted-fallbacks": "1"}
API_KEY = "sk-test-key"
SLOW = 1.5  # seconds a slow scenario sleeps; tests give the module a timeout well under it
STEP = 0.1  # seconds between the chunks of slowchunks
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
DRIP_STEP = 0.05  # seconds between two bytes of a drip: far below any socket timeout of the tests
DRIP_FOR = 2.0  # seconds a drip lasts before the answer is completed
ENDLESS_BYTES = 20 * 1024 * 1024  # when an endless answer gives up: over every default bound of the client
HUGE_BYTES = 9 * 1024 * 1024  # a JSON answer over the client's default bound


def chunk(delta: dict, finish: str | None = None, obj: str = "chat.completion.chunk", **extra) -> dict:
    return {
        "id": "chatcmpl-test1",
        "object": obj,
        "created": 1700000000,
        "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def event(data: dict | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


WORDS = ["Hello", " from", " the", " test", " server."]
ROLE = event(chunk({"role": "assistant", "content": ""}))
CONTENT = [event(chunk({"content": word})) for word in WORDS]
FINISH = event(chunk({}, "stop"))
USAGE = event({**chunk({}), "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}})
DONE = b"data: [DONE]\n\n"
GOOD = [ROLE, *CONTENT, FINISH, USAGE, DONE]
DRIPPED_COMMENT = b":" + b" " * (round(DRIP_FOR / DRIP_STEP) - 2) + b"\n"

# Stream scripts: bytes are written as one HTTP chunk, a float sleeps, "cut" sends half of the next chunk
# and closes the connection, "reset" closes it with a TCP RST, "close" closes it after a false
# Content-Length. The chunked body's terminator follows unless the connection was closed.
STREAMS = {
    "chat": GOOD,
    "serving": GOOD,
    "fallback": GOOD,
    "plain": GOOD,
    "slowchunks": [ROLE, *[part for c in CONTENT for part in (STEP, c)], FINISH, DONE],
    "sse-fields": [
        b": keep-alive\r\n\r\n",
        b"event: message\r\nid: 1\r\nretry: 1000\r\n" + ROLE.replace(b"\n\n", b"\r\n\r\n"),
        *CONTENT,
        FINISH,
        b"data:[DONE]\n\n\n",
    ],
    "done-no-blank": [ROLE, *CONTENT, FINISH, b"data: [DONE]\n"],
    "malformed": [ROLE, CONTENT[0], b"garbage without a field name\n\n", *CONTENT[1:], FINISH, DONE],
    "badjson": [ROLE, CONTENT[0], b'data: {"id": "chatcmpl-test1", "choices": [\n\n', FINISH, DONE],
    "nodone": [ROLE, *CONTENT, FINISH],
    "nodone-length": [ROLE, *CONTENT, "close"],
    "cut": [ROLE, CONTENT[0], "cut", CONTENT[1]],
    "reset": [ROLE, CONTENT[0], 0.1, "reset"],
    "errorevent": [
        ROLE,
        CONTENT[0],
        event({"error": {"message": "litellm.APIConnectionError: backend died", "type": None, "code": "500"}}),
        DONE,
    ],
    "slowfirst": [ROLE, SLOW, *CONTENT, FINISH, DONE],
    "stall": [ROLE, CONTENT[0], SLOW, *CONTENT[1:], FINISH, DONE],
    "wrongobject": [ROLE, event(chunk({"content": "Hello"}, obj="chat.completion")), FINISH, DONE],
    "norole": [event(chunk({"content": "Hello"})), *CONTENT[1:], FINISH, DONE],
    "nofinish": [ROLE, *CONTENT, DONE],
    "nocontent": [ROLE, event(chunk({"content": ""}, "length")), DONE],
    "afterdone": [ROLE, *CONTENT, FINISH, DONE, b"\n", CONTENT[0]],
    # a comment line one byte at a time for DRIP_FOR seconds, then the rest of a good stream
    "drip": [ROLE, *[part for byte in DRIPPED_COMMENT for part in (bytes([byte]), DRIP_STEP)], *GOOD[1:]],
}
# Endless streams: a head, then a piece over and over (see Handler.endless)
ENDLESS = {
    "endless": (ROLE, CONTENT[1]),  # content chunks without end
    "endless-comments": (ROLE, b": keep-alive\n"),  # comments without end: no chunk, no content
    "endless-line": (ROLE + b"data: ", b"x"),  # a line without end
}

ANSWER = {
    "id": "chatcmpl-test2",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(WORDS)}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
}
# Servers that list their names and answer every chat completion with an error, as the real ones do: up, and
# unable to serve. badformat is llama-cpp-python's server given a chat format it does not know
# (llama_cpp/llama_chat_format.py raises at the first chat request, server/errors.py turns it into a 500);
# nocontext is llama-server given a prompt longer than its context (tools/server/server-context.cpp).
UNSERVED = {
    "badformat": (
        500,
        {
            "error": {
                "message": "Invalid chat handler: no-such-format (valid formats: ['llama-2', 'llama-3', 'chatml'])",
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        },
    ),
    "nocontext": (
        400,
        {
            "error": {
                "code": 400,
                "message": "request (300 tokens) exceeds the available context size (256 tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 300,
                "n_ctx": 256,
            }
        },
    ),
}

ANSWERS = {
    "chat": ANSWER,
    "serving": ANSWER,
    "fallback": ANSWER,
    "plain": ANSWER,
    "inband": {"error": {"message": "litellm.RateLimitError: no deployments available", "code": "429"}},
    "wrongobject": {**ANSWER, "object": "chat.completion.chunk"},
    "norole": {**ANSWER, "choices": [{"index": 0, "message": {"content": "Hi"}, "finish_reason": "stop"}]},
    "nousage": {key: value for key, value in ANSWER.items() if key != "usage"},
    "nofinish": {**ANSWER, "choices": [{**ANSWER["choices"][0], "finish_reason": None}]},
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OpenAIServer

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.dispatch("models")

    def do_POST(self) -> None:
        self.dispatch("chat/completions")

    def dispatch(self, api: str) -> None:
        scenario, _, rest = self.path.lstrip("/").partition("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.record(scenario, self.path, dict(self.headers), body)
        self.close_connection = True
        if rest != f"v1/{api}":
            self.send(404, b"404 page not found", "text/plain")
            return
        try:
            self.answer(scenario, api, body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first: its timeout was shorter
            pass

    def answer(self, scenario: str, api: str, body: dict | None) -> None:
        if scenario.startswith("status-"):
            status = int(scenario.split("-")[1])
            error = {"error": {"message": f"test error {status}", "type": "test", "code": str(status)}}
            self.send(status, json.dumps(error).encode())
        elif scenario == "html":
            self.send(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
        elif scenario == "slowheaders":
            time.sleep(SLOW)
            self.send(200, json.dumps(ANSWER).encode())
        elif scenario.startswith("redirect-"):
            _, status, port = scenario.split("-")
            target = f"http://127.0.0.1:{port}/{'models' if api == 'models' else 'chat'}/v1/{api}"
            self.send(int(status), b"", "text/plain", {"Location": target})
        elif scenario == "driphead":
            self.drip_headers()
        elif scenario == "drip" and api == "models":
            self.drip_body()
        elif scenario in ("hugebody", "hugechunked"):
            listing = huge_listing()
            if scenario == "hugebody":
                self.send(200, listing)
            else:
                self.start_chunked(200, "application/json")
                for start in range(0, len(listing), 65536):
                    self.write_chunk(listing[start : start + 65536])
                self.write_chunk(b"")
        elif scenario == "hugeerror":
            self.endless(500, "text/plain", b"", b"x")
        elif scenario in UNSERVED and api == "models":
            self.send(200, json.dumps({"object": "list", "data": MODELS}).encode())
        elif scenario in UNSERVED:
            status, error = UNSERVED[scenario]
            self.send(status, json.dumps(error).encode())
        elif api == "models":
            self.models(scenario)
        elif body.get("stream"):
            self.stream(scenario)
        else:
            self.send(200, json.dumps(ANSWERS[scenario]).encode(), headers=self.routing(scenario))

    def models(self, scenario: str) -> None:
        count = self.server.counts[scenario]
        listing = {"object": "list", "data": MODELS}
        if scenario in ("models", "serving"):
            self.send(200, json.dumps(listing).encode())
        elif scenario == "auth":
            if self.headers.get("Authorization") == f"Bearer {API_KEY}":
                self.send(200, json.dumps(listing).encode())
            else:
                self.send(401, b'{"error": {"message": "Authentication Error, invalid key", "code": "401"}}')
        elif scenario == "nodata":
            self.send(200, b'{"object": "list", "models": []}')
        elif scenario == "nulldata":  # Ollama 0.13 without models
            self.send(200, b'{"object": "list", "data": null}')
        elif scenario.startswith("late-"):  # the models appear with the third request
            self.send(200, json.dumps({"object": "list", "data": MODELS if count >= 3 else []}).encode())
        elif scenario.startswith("starting-"):  # 503 twice, then the listing
            if count < 3:
                self.send(503, b'{"error": {"message": "loading model"}}')
            else:
                self.send(200, json.dumps(listing).encode())
        elif scenario.startswith("degrading-"):  # the listing once, then 503
            if count == 1:
                self.send(200, json.dumps(listing).encode())
            else:
                self.send(503, b'{"error": {"message": "backend crashed"}}')
        else:
            self.send(404, b"404 page not found", "text/plain")

    def drip_headers(self) -> None:
        """The status line at once, then a header one byte at a time for DRIP_FOR seconds, then the listing."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        for _ in range(round(DRIP_FOR / DRIP_STEP)):
            self.wfile.write(b"a")
            time.sleep(DRIP_STEP)
        self.wfile.write(b"\r\n")
        listing = json.dumps({"object": "list", "data": MODELS}).encode()
        self.wfile.write(f"Content-Type: application/json\r\nContent-Length: {len(listing)}\r\n\r\n".encode())
        self.wfile.write(listing)

    def drip_body(self) -> None:
        """The headers at once, then a body of blanks one byte at a time for DRIP_FOR seconds, then the listing."""
        blanks = round(DRIP_FOR / DRIP_STEP)
        listing = json.dumps({"object": "list", "data": MODELS}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(blanks + len(listing)))
        self.end_headers()
        for _ in range(blanks):
            self.wfile.write(b" ")
            time.sleep(DRIP_STEP)
        self.wfile.write(listing)

    def endless(self, status: int, content_type: str, head: bytes, piece: bytes) -> None:
        """``head``, then ``piece`` over and over, until the client hangs up or ENDLESS_BYTES have gone; the
        connection is then closed without the end of the chunked body."""
        self.start_chunked(status, content_type)
        if head:
            self.write_chunk(head)
        batch = piece * max(1, 65536 // len(piece))
        for _ in range(ENDLESS_BYTES // len(batch) + 1):
            self.write_chunk(batch)

    def start_chunked(self, status: int, content_type: str) -> None:
        self.send_response(status, REASONS.get(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        """One chunk of a chunked body; an empty one ends the body."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def routing(self, scenario: str) -> dict:
        return {"fallback": FALLBACK_ROUTING, "plain": {}}.get(scenario, ROUTING)

    def stream(self, scenario: str) -> None:
        if scenario == "wrongtype":  # a server that ignores "stream": true
            self.send(200, json.dumps(ANSWER).encode(), headers=ROUTING)
            return
        if scenario in ENDLESS:
            self.endless(200, "text/event-stream; charset=utf-8", *ENDLESS[scenario])
            return
        script = STREAMS[scenario]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        for name, value in self.routing(scenario).items():
            self.send_header(name, value)
        chunked = "close" not in script
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.flush()
        steps = iter(script)
        for step in steps:
            if isinstance(step, float):
                time.sleep(step)
            elif step == "cut":
                data = next(steps)
                self.wfile.write(f"{len(data):x}\r\n".encode() + data[: len(data) // 2])
                self.wfile.flush()
                return
            elif step == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            elif step == "close":
                return
            else:
                self.wfile.write(f"{len(step):x}\r\n".encode() + step + b"\r\n" if chunked else step)
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None):
        self.send_response(status, REASONS.get(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


class OpenAIServer(ThreadingHTTPServer):
    """The server, serving from a daemon thread while used as a context manager."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.counts: Counter = Counter()
        self.lock = threading.Lock()

    def __enter__(self) -> OpenAIServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{scenario}"

    def record(self, scenario: str, path: str, headers: dict, body: object) -> None:
        with self.lock:
            self.counts[scenario] += 1
            self.requests.append({"path": path, "headers": headers, "body": body})


def huge_listing() -> bytes:
    """A valid model listing of more than HUGE_BYTES."""
    return json.dumps({"object": "list", "data": MODELS, "padding": "x" * HUGE_BYTES}).encode()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
