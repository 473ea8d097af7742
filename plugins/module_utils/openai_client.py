# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for OpenAI-compatible servers (vLLM, llama.cpp, Ollama, the LiteLLM gateway).

Requests go through ``ansible.module_utils.urls.open_url``, so proxies, TLS options and timeouts behave as
in every Ansible HTTP module. Each failure raises one class of ``OpenAIError`` whose message names the
endpoint, so modules can tell them apart and report them as they are:

* ``ServerNotAnswering``: no HTTP answer (connection refused, DNS, TLS, reset); ``AnswerTimeout``, one of
  them, when the server took the request and sent nothing within the timeout, or not all of its answer
  within the deadline; ``DeadlineExceeded``, one of those, when a stream is not done within its deadline.
* ``HttpError``: an HTTP status other than 2xx (``status``, ``excerpt``); ``AuthRejected`` for 401 and 403;
  ``Redirected`` for a 3xx, which is never followed (``location``).
* ``NotJson``: a body that is not the JSON expected; ``BodyTooLarge`` for one over ``MAX_BODY_BYTES``.
* ``BadStream``: a server-sent event stream that breaks the protocol (a malformed line, a chunk that is
  not JSON, an error event, no ``data: [DONE]``) or one of the bounds of a stream; ``partial`` holds what
  was read before.

A server is not trusted to behave: every read is bounded (a JSON body, an event line, a whole stream, its
chunks and its content), every call has a deadline that a server trickling bytes cannot push back, and
no redirect is followed, so the API key goes to the address the module was given and to no other.

Standard library and ``open_url`` only: the modules using this file run on the managed hosts.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import urllib.error
from dataclasses import dataclass, field

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

EXCERPT_CHARS = 200
SSE_FIELDS = ("data", "event", "id", "retry")
DONE = "[DONE]"

# Bounds on what a server may send. A model listing or a plain chat completion is a few KiB; a stream of a
# few thousand tokens is a few MiB of events of a few hundred bytes each.
MAX_BODY_BYTES = 8 * 1024 * 1024  # a JSON answer (get_json, post_json)
MAX_ERROR_BYTES = 64 * 1024  # read of an error body (only its excerpt is shown)
MAX_LINE_BYTES = 64 * 1024  # one line of an event stream, its line break included
MAX_STREAM_BYTES = 16 * 1024 * 1024  # a whole event stream, comments and blank lines included
MAX_CHUNKS = 65536  # JSON chunks of a stream: about one per generated token
MAX_CONTENT_CHARS = 4 * 1024 * 1024  # characters of content a stream may deliver
STREAM_DEADLINE = 600.0  # seconds a whole stream may take; a JSON call's deadline is its timeout


def connection_argument_spec() -> dict:
    """The options every module of this client takes, besides url; documented by the openai_connection doc fragment."""
    return {
        "api_key": {"type": "str", "no_log": True},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "use_proxy": {"type": "bool", "default": True},
        "headers": {"type": "dict", "default": {}},
    }


def connection_options(params: dict) -> dict:
    """The connection keyword arguments of this client's functions, picked from a module's params."""
    return {name: params[name] for name in ("api_key", "validate_certs", "ca_path", "use_proxy", "headers")}


def endpoint(url: str, path: str) -> str:
    """``url`` with ``/v1/<path>`` appended; a base URL already ending in ``/v1`` gets only ``/<path>``."""
    base = url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    return f"{base}/{path.lstrip('/')}"


def excerpt(text: str | bytes, limit: int = EXCERPT_CHARS) -> str:
    """The start of a body on one line, for a message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_message(body: bytes) -> str:
    """The error text of an error body: OpenAI's ``error.message``, FastAPI's ``detail``, else an excerpt."""
    try:
        data = json.loads(body)
    except ValueError:
        return excerpt(body)
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return excerpt(str(error["message"]))
        for value in (error, data.get("message"), data.get("detail")):
            if isinstance(value, str) and value:
                return excerpt(value)
    return excerpt(body)


class OpenAIError(Exception):
    """A request to an OpenAI-compatible server failed; ``str()`` is the message for the user."""

    def __init__(self, message: str, url: str, status: int | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.headers = headers or {}


class ServerNotAnswering(OpenAIError):
    """No HTTP answer: ``reason`` says why (connection refused, timed out, certificate...)."""

    def __init__(self, url: str, reason: str, message: str = "") -> None:
        super().__init__(message or f"{url} is not answering: {reason}", url)
        self.reason = reason


class AnswerTimeout(ServerNotAnswering):
    """The server took the request but sent nothing within ``timeout``; ``partial`` is what came before."""

    def __init__(self, url: str, timeout: float, message: str, partial: StreamResult | None = None) -> None:
        super().__init__(url, f"no response within {timeout:g} s", message)
        self.timeout = timeout
        self.partial = partial


class DeadlineExceeded(AnswerTimeout):
    """A stream not done within its ``deadline``, however steadily it trickled; ``partial`` is what came."""

    def __init__(self, url: str, deadline: float, message: str, partial: StreamResult | None = None) -> None:
        super().__init__(url, deadline, message, partial)
        self.reason = f"not done within the deadline of {deadline:g} s"


class HttpError(OpenAIError):
    """An HTTP status other than 2xx; ``excerpt`` is the start of the body (its error message if JSON)."""

    def __init__(self, url: str, status: int, headers: dict, body: bytes) -> None:
        self.excerpt = error_message(body)
        super().__init__(f"HTTP {status} from {url}: {self.excerpt}", url, status, headers)


class Redirected(HttpError):
    """A 3xx answer. Redirects are never followed: ``location`` is where the server pointed (if anywhere)."""

    def __init__(self, url: str, status: int, headers: dict, body: bytes) -> None:
        super().__init__(url, status, headers, body)
        self.location = headers.get("location")
        target = excerpt(self.location) if self.location else "no Location"
        self.excerpt = f"redirect to {target} not followed (no redirect is: give the final URL)"
        self.args = (f"HTTP {status} from {url}: {self.excerpt}",)


class AuthRejected(HttpError):
    """401 or 403: the API key is missing or wrong."""

    def __init__(self, url: str, status: int, headers: dict, body: bytes) -> None:
        super().__init__(url, status, headers, body)
        self.args = (f"{url} refused the API key (HTTP {status})",)


class NotJson(OpenAIError):
    """A body that is not JSON, or not the JSON expected; ``excerpt`` is its start."""

    def __init__(self, url: str, status: int, headers: dict, body: bytes | str, what: str = "") -> None:
        self.excerpt = excerpt(body)
        message = f"{url} {what}" if what else f"{url} did not answer JSON: {self.excerpt}"
        super().__init__(message, url, status, headers)


class BodyTooLarge(NotJson):
    """A JSON answer longer than the ``limit`` in bytes; none of it is decoded."""

    def __init__(self, url: str, status: int, headers: dict, limit: int, announced: int | None = None) -> None:
        what = f"announced an answer of {announced} bytes" if announced is not None else "sent an answer"
        super().__init__(url, status, headers, b"", f"{what} over the limit of {_size(limit)}")
        self.limit = limit


class BadStream(OpenAIError):
    """A server-sent event stream that breaks the protocol; ``partial`` holds what was read before."""

    def __init__(self, message: str, partial: StreamResult) -> None:
        super().__init__(message, partial.url, partial.status, partial.headers)
        self.partial = partial


@dataclass
class JsonAnswer:
    """A JSON answer: ``data`` is the decoded body."""

    url: str
    status: int
    headers: dict
    data: object
    elapsed: float


@dataclass
class StreamResult:
    """What a chat completion stream delivered; filled in as it is read, so it is also a partial result.

    ``ttft`` is the time from sending the request to the first non-empty content delta of choice 0.
    """

    url: str
    status: int
    headers: dict
    started: float
    chunks: list = field(default_factory=list)
    content: str = ""
    ttft: float | None = None
    total_time: float | None = None
    done: bool = False


class _Expired(BaseException):
    """The deadline of a call passed. A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    or ``except OSError`` on the way through urllib and http.client turns it into something else."""


class _Deadline:
    """A hard limit on the wall-clock time of a block: past ``seconds``, whatever it waits on raises _Expired.

    The socket timeout bounds each wait for a byte, and a server that sends one byte just within it restarts
    it forever, while sending headers as much as a body. Only a timer bounds the whole call: SIGALRM
    interrupts the wait in connect, the TLS handshake, the headers or the body, and its handler raises.
    Signals reach only the main thread, where Ansible runs a module; elsewhere, or when a timer someone
    else set is running (it is left alone), only the socket timeout and the size bounds apply.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False
        self.previous = None

    def __enter__(self) -> _Deadline:
        self.armed = (
            hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        )
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 0.001))  # 0 would disarm it
        return self

    def __exit__(self, *exc) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous if self.previous is not None else signal.SIG_DFL)
            self.armed = False

    @staticmethod
    def _expire(signum, frame) -> None:
        raise _Expired


def open_request(url: str, *, method: str = "GET", body: dict | None = None, timeout: float = 10, **options):
    """Send one request and return the open response (2xx); raise ServerNotAnswering or HttpError.

    ``options``: api_key (sent as ``Authorization: Bearer``), headers, validate_certs, ca_path, use_proxy,
    accept (the ``Accept`` header).
    """
    headers = {"Accept": options.get("accept") or "application/json"}
    headers.update(options.get("headers") or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
    if options.get("api_key"):
        headers["Authorization"] = f"Bearer {options['api_key']}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        return open_url(
            url,
            data=data,
            headers=headers,
            method=method,
            timeout=timeout,
            validate_certs=options.get("validate_certs", True),
            ca_path=options.get("ca_path"),
            use_proxy=options.get("use_proxy", True),
            # urllib would follow a redirect to any address with every header, the API key included. Following
            # only those to the same scheme, host and port would need a redirect handler of our own, for
            # little: the servers of this client do not redirect their API, so a 3xx is a wrong URL (a
            # missing https or path) that the operator fixes once. So none is followed: Redirected names it.
            follow_redirects="none",
        )
    except urllib.error.HTTPError as err:
        raise _http_error(url, err) from None
    except urllib.error.URLError as err:
        raise ServerNotAnswering(url, str(err.reason)) from None
    except TimeoutError:
        raise AnswerTimeout(url, timeout, f"{url} sent no response within {timeout:g} s") from None
    except (UrlsConnectionError, http.client.HTTPException, OSError) as err:
        raise ServerNotAnswering(url, str(err) or type(err).__name__) from None


def _http_error(url: str, err: urllib.error.HTTPError) -> HttpError:
    try:
        body = err.read(MAX_ERROR_BYTES)
    except (http.client.HTTPException, OSError, ValueError):  # ValueError: no body to read
        body = b""
    finally:
        err.close()
    headers = lowercase_headers(err.headers)
    if 300 <= err.code < 400:
        return Redirected(url, err.code, headers, body)
    kind = AuthRejected if err.code in (401, 403) else HttpError
    return kind(url, err.code, headers, body)


def lowercase_headers(headers) -> dict:
    """A response's headers as a dict with lowercase names."""
    return {name.lower(): value for name, value in (headers or {}).items()}


def read_body(response, url: str, timeout: float, max_body: int = MAX_BODY_BYTES) -> bytes:
    """The whole body of a response, at most ``max_body`` bytes (else BodyTooLarge); a cut or stalled body
    raises ServerNotAnswering / AnswerTimeout."""
    announced = response.headers.get("Content-Length")
    if announced and announced.isdigit() and int(announced) > max_body:
        raise BodyTooLarge(url, response.status, lowercase_headers(response.headers), max_body, int(announced))
    try:
        body = response.read(max_body + 1)
    except TimeoutError:
        raise AnswerTimeout(url, timeout, f"{url} sent no complete answer within {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as err:
        raise ServerNotAnswering(url, f"the answer was cut off ({type(err).__name__})") from None
    if len(body) > max_body:
        raise BodyTooLarge(url, response.status, lowercase_headers(response.headers), max_body)
    return body


def get_json(
    url: str, *, timeout: float = 10, deadline: float | None = None, max_body: int = MAX_BODY_BYTES, **options
) -> JsonAnswer:
    """GET ``url`` and decode its JSON body; raise NotJson if it is not JSON.

    The whole answer must arrive within ``deadline`` seconds (by default ``timeout``), and be at most
    ``max_body`` bytes long.
    """
    return _json_call(url, "GET", None, timeout=timeout, deadline=deadline, max_body=max_body, options=options)


def post_json(
    url: str,
    body: dict,
    *,
    timeout: float = 60,
    deadline: float | None = None,
    max_body: int = MAX_BODY_BYTES,
    **options,
) -> JsonAnswer:
    """POST ``body`` as JSON to ``url`` and decode the JSON answer; raise NotJson if it is not JSON.

    The whole answer must arrive within ``deadline`` seconds (by default ``timeout``), and be at most
    ``max_body`` bytes long.
    """
    return _json_call(url, "POST", body, timeout=timeout, deadline=deadline, max_body=max_body, options=options)


def _json_call(url: str, method: str, body, *, timeout: float, deadline: float | None, max_body: int, options: dict):
    """One JSON request; past the deadline it fails as a timeout would, so both say the same."""
    limit = timeout if deadline is None else deadline
    wait = min(timeout, limit)  # the socket timeout, for a server that sends nothing
    started = time.monotonic()
    response = None
    try:
        with _Deadline(limit):
            response = open_request(url, method=method, body=body, timeout=wait, **options)
            with response:
                return _decode(url, response, read_body(response, url, wait, max_body), started)
    except _Expired:
        if response is None:
            raise AnswerTimeout(url, limit, f"{url} sent no response within {limit:g} s") from None
        raise AnswerTimeout(url, limit, f"{url} sent no complete answer within {limit:g} s") from None


def _decode(url: str, response, body: bytes, started: float) -> JsonAnswer:
    headers = lowercase_headers(response.headers)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise NotJson(url, response.status, headers, body) from None
    return JsonAnswer(url, response.status, headers, data, time.monotonic() - started)


def stream_chat(
    url: str,
    body: dict,
    *,
    timeout: float = 60,
    deadline: float = STREAM_DEADLINE,
    max_line: int = MAX_LINE_BYTES,
    max_stream: int = MAX_STREAM_BYTES,
    max_chunks: int = MAX_CHUNKS,
    max_content: int = MAX_CONTENT_CHARS,
    **options,
) -> StreamResult:
    """POST a streaming chat completion and read its server-sent events up to ``data: [DONE]``.

    Every data payload but ``[DONE]`` must be a JSON object; one with an ``error`` key is an in-band
    error. Raises BadStream (with ``partial``) for any break of the protocol and for a line over
    ``max_line`` bytes, a stream over ``max_stream`` bytes, more than ``max_chunks`` chunks or more than
    ``max_content`` characters of content; AnswerTimeout when nothing arrives within ``timeout`` seconds;
    DeadlineExceeded when the stream is not done within ``deadline`` seconds.
    """
    started = time.monotonic()
    wait = min(timeout, deadline)  # the socket timeout, for a server that sends nothing
    result = None
    try:
        with _Deadline(deadline):
            try:
                response = open_request(
                    url, method="POST", body=body, timeout=wait, accept="text/event-stream", **options
                )
            except AnswerTimeout:
                message = f"no first token within {wait:g} s from {url} (no response headers)"
                raise AnswerTimeout(url, wait, message) from None
            with response:
                result = StreamResult(url, response.status, lowercase_headers(response.headers), started)
                content_type = result.headers.get("content-type", "")
                if response.status != 200:
                    raise HttpError(url, response.status, result.headers, _safe_read(response))
                if not content_type.startswith("text/event-stream"):
                    raise BadStream(
                        f"{url} answered Content-Type {content_type!r}, not text/event-stream: "
                        f"{excerpt(_safe_read(response))}",
                        result,
                    )
                try:
                    for payload in sse_data(response, result, max_line, max_stream):
                        _add_chunk(result, payload, max_chunks, max_content)
                except TimeoutError:
                    raise AnswerTimeout(url, wait, _timeout_message(result, wait), result) from None
                except (http.client.HTTPException, OSError):
                    raise BadStream(_ended_message(result), result) from None
                return result
    except _Expired:
        if result is None:
            message = f"{url} sent no response headers within the deadline of {deadline:g} s"
        else:
            message = f"the stream from {url} was not done within the deadline of {deadline:g} s"
            message += f" (after {_count(len(result.chunks))})"
        raise DeadlineExceeded(url, deadline, message, result) from None


def _safe_read(response) -> bytes:
    try:
        return response.read(MAX_ERROR_BYTES)
    except (http.client.HTTPException, OSError):
        return b""


def sse_data(response, result: StreamResult, max_line: int = MAX_LINE_BYTES, max_stream: int = MAX_STREAM_BYTES):
    """Yield the data of each server-sent event of ``response`` until ``data: [DONE]``, line by line.

    Comments (``:``) and the fields ``event``, ``id`` and ``retry`` are ignored; a line that is no SSE
    field is malformed. After ``[DONE]`` only blank lines may follow; a stream that ends before it is broken.
    A line over ``max_line`` bytes (its line break included) or a stream over ``max_stream`` bytes is broken too.
    """
    data: list[str] = []
    number = 0
    size = 0
    while True:
        raw = response.readline(max_line + 1)
        size += len(raw)
        if len(raw) > max_line:
            message = f"{result.url} sent line {number + 1} of the stream over the limit of {_size(max_line)}"
            raise BadStream(f"{message} (after {_count(len(result.chunks))})", result)
        if size > max_stream:
            message = f"{result.url} sent a stream over the limit of {_size(max_stream)}"
            raise BadStream(f"{message} (after {_count(len(result.chunks))})", result)
        if not raw:
            if data == [DONE]:  # the last blank line is missing: the server did send [DONE]
                result.done = True
                result.total_time = time.monotonic() - result.started
            break
        number += 1
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if result.done:
            if line.strip():
                raise BadStream(f"{result.url} sent more after data: [DONE]: {excerpt(line)}", result)
            continue
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload == DONE:
                    result.done = True
                    result.total_time = time.monotonic() - result.started
                else:
                    yield payload
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name not in SSE_FIELDS:
            raise BadStream(f"malformed event line {number} from {result.url}: {excerpt(line)}", result)
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if not result.done:
        raise BadStream(_ended_message(result), result)


def _add_chunk(
    result: StreamResult, payload: str, max_chunks: int = MAX_CHUNKS, max_content: int = MAX_CONTENT_CHARS
) -> None:
    """Decode one data payload into ``result``: its chunk, and the content delta of choice 0."""
    number = len(result.chunks) + 1
    if number > max_chunks:
        raise BadStream(f"{result.url} sent more than {max_chunks} chunks, the limit of a stream", result)
    try:
        chunk = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise BadStream(f"chunk {number} from {result.url} is not JSON: {excerpt(payload)}", result) from None
    if not isinstance(chunk, dict):
        raise BadStream(f"chunk {number} from {result.url} is not a JSON object: {excerpt(payload)}", result)
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise BadStream(f"the stream carried an error event: {message}", result)
    result.chunks.append(chunk)
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(text, str) and text:
            if result.ttft is None:
                result.ttft = time.monotonic() - result.started
            result.content += text
            if len(result.content) > max_content:
                message = f"{result.url} sent content over the limit of {max_content} characters"
                raise BadStream(f"{message} (after {_count(len(result.chunks))})", result)


def _ended_message(result: StreamResult) -> str:
    return f"the stream ended before data: [DONE] after {_count(len(result.chunks))}"


def _timeout_message(result: StreamResult, timeout: float) -> str:
    if result.done:
        return f"{result.url} kept the stream open for {timeout:g} s after data: [DONE]"
    if result.ttft is None:
        return f"no first token within {timeout:g} s from {result.url} (after {_count(len(result.chunks))})"
    return f"the stream stalled: nothing within {timeout:g} s after {_count(len(result.chunks))}"


def _count(chunks: int) -> str:
    return f"{chunks} chunk" if chunks == 1 else f"{chunks} chunks"


def _size(limit: int) -> str:
    """A limit in bytes as people write it: ``8 MiB``, ``64 KiB``, ``1000 bytes``."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= factor and limit % factor == 0:
            return f"{limit // factor} {unit}"
    return f"{limit} bytes"
