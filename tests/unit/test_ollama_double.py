# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ollama test double, installed from its release archive and driven through its real API shapes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from ansible_collections.labai.llm_stack.plugins.filter.ollama_digest_problems import ollama_digest_problems
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import build_plan

DOUBLES = Path(__file__).resolve().parents[1] / "doubles" / "ollama"
BUILD_SCRIPT = DOUBLES / "build_release_archive.py"
DOUBLE_SOURCE = DOUBLES / "ollama_double.py"
ARCHIVE = "ollama-linux-amd64.tgz"
VERSION = "0.13.5"
MODEL = "tiny-llama"
MODEL_TAG = "tiny-llama:latest"
TINY_SIZE = 637700138
HEX64 = re.compile(r"[0-9a-f]{64}")
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")
RFC3339_ANY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
TIMEOUT = 10
FAILED_PULL = "pull model manifest: file does not exist"
SERVER_ENV = {
    "OLLAMA_CONTEXT_LENGTH": "8192",
    "OLLAMA_KEEP_ALIVE": "10m",
    "OLLAMA_NUM_PARALLEL": "2",
    "OLLAMA_MAX_LOADED_MODELS": "2",
}


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@dataclass
class Release:
    """A built release archive and the tree it extracts to."""

    out: Path
    archive: Path
    digest: str
    build_stdout: str
    root: Path

    @property
    def binary(self) -> Path:
        """The extracted bin/ollama."""
        return self.root / "bin" / "ollama"


def build_release(out: Path, *extra: str) -> tuple[Path, str, str]:
    """Run build_release_archive.py; return the archive path, its sha256 and the script's output."""
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    archive = out / ARCHIVE
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest(), result.stdout


def extract(archive: Path, dest: Path) -> Path:
    """Extract an archive the way the role will (tar -xzf into a prefix)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(home: Path, **values: str) -> dict[str, str]:
    """The environment for the double: no inherited OLLAMA_* variables, HOME in tmp."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OLLAMA_")}
    env["HOME"] = str(home)
    env.update(values)
    return env


def run_cli(binary: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run bin/ollama with arguments."""
    return subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def ndjson(response: requests.Response) -> list[dict[str, Any]]:
    """Every line of an NDJSON body, each required to be a JSON object."""
    assert response.text.endswith("\n"), "NDJSON bodies end with a newline"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def sse_events(response: requests.Response) -> list[str]:
    """The data payloads of an SSE body; every event must be exactly one ``data:`` line."""
    assert response.text.endswith("\n\n")
    events = response.text[:-2].split("\n\n")
    assert all(event.startswith("data: ") and "\n" not in event for event in events), events
    return [event[len("data: ") :] for event in events]


class OllamaServe:
    """``bin/ollama serve`` as a subprocess on 127.0.0.1."""

    def __init__(self, binary: Path, models: Path, port: int, env: dict[str, str], log: Path) -> None:
        self.binary, self.models, self.port, self.log = binary, models, port, log
        self.env = {**env, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(models)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OllamaServe:
        """Start and wait until GET / answers."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([str(self.binary), "serve"], env=self.env, stderr=log)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"ollama serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                requests.get(self.url("/"), timeout=1)
            except requests.ConnectionError:
                time.sleep(0.05)
                continue
            return self
        pytest.fail(f"ollama serve did not answer within {TIMEOUT}s:\n{self.log.read_text()}")

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)
        return self.process.returncode

    def url(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request; every response must carry the test-double marker header."""
        response = requests.request(method, self.url(path), timeout=TIMEOUT, **kwargs)
        assert response.headers.get("X-Test-Double") == "ollama", (path, dict(response.headers))
        return response

    def post(self, path: str, body: Any) -> requests.Response:
        """POST a JSON body."""
        return self.call("POST", path, json=body)

    def pull(self, model: str = MODEL) -> None:
        """Pull a model without streaming and insist on success."""
        response = self.post("/api/pull", {"model": model, "stream": False})
        assert (response.status_code, response.json()) == (200, {"status": "success"})


def load_double() -> ModuleType:
    """Import ollama_double.py for its pure functions."""
    spec = importlib.util.spec_from_file_location("ollama_double", DOUBLE_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The archive built once for this module, extracted like an install."""
    out = tmp_path_factory.mktemp("release")
    archive, digest, stdout = build_release(out)
    return Release(out, archive, digest, stdout, extract(archive, out / "prefix"))


@pytest.fixture(scope="module")
def double() -> ModuleType:
    """The double's module."""
    return load_double()


@pytest.fixture
def start_server(release: Release, tmp_path: Path) -> Iterator[Callable[..., OllamaServe]]:
    """Start servers on free ports (same models dir unless told otherwise); stop them afterwards."""
    started: list[OllamaServe] = []

    def start(models: Path | None = None, port: int | None = None, **env: str) -> OllamaServe:
        log = tmp_path / f"serve-{len(started)}.log"
        environment = clean_env(tmp_path / "home", **{**SERVER_ENV, **env})
        server = OllamaServe(release.binary, models or tmp_path / "models", port or free_port(), environment, log)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., OllamaServe]) -> OllamaServe:
    """A running server with no models."""
    return start_server()


@pytest.fixture
def pulled(server: OllamaServe) -> OllamaServe:
    """A running server with tiny-llama pulled."""
    server.pull()
    return server


# --------------------------------------------------------------------------------------------------
# The release archive
# --------------------------------------------------------------------------------------------------


def test_archive_is_laid_out_like_ollama_release(release: Release) -> None:
    with tarfile.open(release.archive) as tar:
        members = {member.name: member for member in tar.getmembers()}
        registry = json.loads(tar.extractfile("./lib/ollama/registry.json").read())
        readme = tar.extractfile("./lib/ollama/README.txt").read().decode()
    # tarfile drops the trailing "/" of directory names: "./", "./bin/" ... are stored as directories.
    assert sorted(members) == [
        ".",
        "./bin",
        "./bin/ollama",
        "./lib",
        "./lib/ollama",
        "./lib/ollama/README.txt",
        "./lib/ollama/registry.json",
    ]
    assert {name for name, member in members.items() if member.isdir()} == {
        ".",
        "./bin",
        "./lib",
        "./lib/ollama",
    }
    binary = members["./bin/ollama"]
    assert binary.isfile() and binary.mode == 0o755
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, members["."].mtime)}
    assert release.binary.read_text().startswith("#!/usr/bin/env python3\n")
    assert os.access(release.binary, os.X_OK)
    assert {"tiny-llama:latest", "qwen2.5-coder:7b"} <= set(registry)
    for entry in registry.values():
        assert {"size", "parameter_size", "quantization_level", "family"} <= set(entry)
    assert "TEST DOUBLE" in readme and "NOT OLLAMA" in readme


def test_checksum_file_is_in_sha256sum_format(release: Release) -> None:
    checksum = (release.out / "sha256sum.txt").read_text()
    assert checksum == f"{release.digest}  ./{ARCHIVE}\n"
    assert HEX64.fullmatch(release.digest)
    assert release.build_stdout == f"archive: {release.archive}\nsha256: {release.digest}\n"


def test_archive_is_reproducible_and_carries_its_version(release: Release, tmp_path: Path) -> None:
    _, again, _ = build_release(tmp_path / "again")
    assert again == release.digest
    older, older_digest, _ = build_release(tmp_path / "older", "--version", "0.13.4")
    assert older_digest != release.digest
    binary = extract(older, tmp_path / "older-prefix") / "bin" / "ollama"
    env = clean_env(tmp_path, OLLAMA_HOST=f"127.0.0.1:{free_port()}")
    assert run_cli(binary, env, "--version").stdout.endswith("Warning: client version is 0.13.4\n")


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def test_version_without_a_server_prints_the_real_warnings(release: Release, tmp_path: Path) -> None:
    env = clean_env(tmp_path, OLLAMA_HOST=f"127.0.0.1:{free_port()}")
    result = run_cli(release.binary, env, "--version")
    assert result.returncode == 0
    assert result.stdout == (
        f"Warning: could not connect to a running Ollama instance\nWarning: client version is {VERSION}\n"
    )


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version_with_a_server(server: OllamaServe, flag: str) -> None:
    result = run_cli(server.binary, server.env, flag)
    assert (result.returncode, result.stdout) == (0, f"ollama version is {VERSION}\n")


def test_list_prints_the_model_table(pulled: OllamaServe) -> None:
    digest = pulled.call("GET", "/api/tags").json()["models"][0]["digest"]
    result = run_cli(pulled.binary, pulled.env, "list")
    assert result.returncode == 0, result.stderr
    header, row = (line.split() for line in result.stdout.splitlines())
    assert header == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert row[:4] == [MODEL_TAG, digest[:12], "637", "MB"]
    assert " ".join(row[4:]).endswith("ago")


def test_list_without_a_server_fails(release: Release, tmp_path: Path) -> None:
    env = clean_env(tmp_path, OLLAMA_HOST=f"127.0.0.1:{free_port()}")
    result = run_cli(release.binary, env, "list")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ollama server not responding - could not connect to ollama server")


def test_unknown_command_fails(release: Release, tmp_path: Path) -> None:
    result = run_cli(release.binary, clean_env(tmp_path), "frobnicate")
    assert result.returncode == 1
    assert result.stderr.startswith('Error: unknown command "frobnicate" for "ollama"')


# --------------------------------------------------------------------------------------------------
# Server basics
# --------------------------------------------------------------------------------------------------


def test_root_and_version_endpoints(server: OllamaServe) -> None:
    root = server.call("GET", "/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["Content-Type"].startswith("text/plain")
    head = server.call("HEAD", "/")
    assert (head.status_code, head.content, head.headers["Content-Length"]) == (200, b"", "17")
    version = server.call("GET", "/api/version")
    assert (version.status_code, version.json()) == (200, {"version": VERSION})
    assert server.call("HEAD", "/api/version").status_code == 200


def test_unknown_routes_and_methods_are_answered_like_gin(server: OllamaServe) -> None:
    missing = server.call("GET", "/api/nothing")
    assert (missing.status_code, missing.text) == (404, "404 page not found")
    wrong = server.call("GET", "/api/pull")
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


def wait_for_log(server: OllamaServe, pattern: str) -> str:
    """The server's log once a line matches pattern (request lines are written after the response)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        log = server.log.read_text()
        if re.search(pattern, log) or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_startup_log_marks_the_double_and_logs_settings(server: OllamaServe) -> None:
    server.call("GET", "/api/tags")
    request_line = r'\[GIN\] .* \| 200 \| .* \| +127\.0\.0\.1 \| GET +"/api/tags"'
    log = wait_for_log(server, request_line)
    assert re.search(request_line, log)
    listening = [line for line in log.splitlines() if "Listening on" in line]
    assert len(listening) == 1
    assert f'msg="Listening on 127.0.0.1:{server.port} (version {VERSION})"' in listening[0]
    assert "test_double=ollama" in listening[0]
    config = next(line for line in log.splitlines() if 'msg="server config"' in line)
    for expected in (
        "OLLAMA_CONTEXT_LENGTH:8192",
        "OLLAMA_KEEP_ALIVE:10m0s",
        "OLLAMA_NUM_PARALLEL:2",
        "OLLAMA_MAX_LOADED_MODELS:2",
        f"OLLAMA_MODELS:{server.models}",
    ):
        assert expected in config


def test_sigterm_stops_the_server_cleanly(server: OllamaServe) -> None:
    assert server.stop() == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url("/"), timeout=2)


def test_busy_port_is_reported_like_go(server: OllamaServe, release: Release, tmp_path: Path) -> None:
    env = clean_env(tmp_path, OLLAMA_HOST=f"127.0.0.1:{server.port}", OLLAMA_MODELS=str(tmp_path / "m"))
    result = subprocess.run(
        [str(release.binary), "serve"], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 1
    assert f"Error: listen tcp 127.0.0.1:{server.port}: bind: address already in use" in result.stderr


def test_ollama_host_with_scheme(start_server: Callable[..., OllamaServe]) -> None:
    port = free_port()
    server = start_server(port=port, OLLAMA_HOST=f"http://127.0.0.1:{port}")
    server.env["OLLAMA_HOST"] = f"http://127.0.0.1:{port}"
    assert run_cli(server.binary, server.env, "-v").stdout == f"ollama version is {VERSION}\n"


# --------------------------------------------------------------------------------------------------
# Pulling and managing models
# --------------------------------------------------------------------------------------------------


def check_layer_progress(lines: list[dict[str, Any]], *, cached: bool) -> set[str]:
    """Assert the per-layer ``pulling <digest>`` lines; return the digests seen."""
    by_digest: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        digest = line["digest"]
        assert digest.startswith("sha256:") and HEX64.fullmatch(digest[7:])
        assert line["status"] == f"pulling {digest[7:19]}"
        assert set(line) <= {"status", "digest", "total", "completed"}
        by_digest.setdefault(digest, []).append(line)
    for progress in by_digest.values():
        completed = [line.get("completed", 0) for line in progress]
        assert completed == sorted(completed), "progress never goes backwards"
        assert completed[-1] == progress[-1]["total"] > 0
        if cached:
            assert len(progress) == 1
        else:
            assert "completed" not in progress[0], "completed is omitted while 0"
            assert len(progress) >= 2
    return set(by_digest)


def test_pull_streams_progress_then_tags_lists_the_model(server: OllamaServe) -> None:
    assert server.call("GET", "/api/tags").json() == {"models": []}
    response = server.post("/api/pull", {"model": MODEL})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = ndjson(response)
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-3:] == [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    digests = check_layer_progress(lines[1:-3], cached=False)
    assert len(digests) >= 2
    big = max(lines[1:-3], key=lambda line: line["total"])
    assert sum(1 for line in lines if line.get("digest") == big["digest"]) >= 3, "several lines for the weights"

    models = server.call("GET", "/api/tags").json()["models"]
    assert len(models) == 1
    model = models[0]
    assert list(model) == ["name", "model", "modified_at", "size", "digest", "details"]
    assert (model["name"], model["model"], model["size"]) == (MODEL_TAG, MODEL_TAG, TINY_SIZE)
    assert HEX64.fullmatch(model["digest"])
    assert RFC3339_ANY.fullmatch(model["modified_at"])
    assert abs(datetime.fromisoformat(model["modified_at"]).timestamp() - time.time()) < 60
    assert model["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "1.1B",
        "quantization_level": "Q4_0",
    }


def test_second_pull_succeeds_with_cached_layers(pulled: OllamaServe) -> None:
    before = pulled.call("GET", "/api/tags").json()["models"]
    lines = ndjson(pulled.post("/api/pull", {"name": MODEL_TAG}))
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-1] == {"status": "success"}
    assert len(check_layer_progress(lines[1:-3], cached=True)) >= 2
    after = pulled.call("GET", "/api/tags").json()["models"]
    assert [(m["name"], m["digest"]) for m in after] == [(m["name"], m["digest"]) for m in before]


def test_pull_without_streaming_answers_once(server: OllamaServe) -> None:
    response = server.post("/api/pull", {"model": "qwen2.5-coder:7b", "stream": False})
    assert (response.status_code, response.text) == (200, '{"status":"success"}')
    names = [m["name"] for m in server.call("GET", "/api/tags").json()["models"]]
    assert names == ["qwen2.5-coder:7b"]


def test_pull_of_an_unknown_model_fails(server: OllamaServe) -> None:
    streamed = server.post("/api/pull", {"model": "no-such-model"})
    assert streamed.status_code == 200
    assert ndjson(streamed) == [{"status": "pulling manifest"}, {"error": FAILED_PULL}]
    single = server.post("/api/pull", {"model": "no-such-model", "stream": False})
    assert (single.status_code, single.json()) == (500, {"error": FAILED_PULL})
    assert server.call("GET", "/api/tags").json() == {"models": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "missing request body"),
        ({}, "invalid model name"),
        ({"model": "a/b/c/d"}, "invalid model name"),
        ({"model": MODEL, "stream": "yes"}, None),
        ([MODEL], None),
    ],
)
def test_pull_rejects_bad_requests(server: OllamaServe, body: Any, message: str | None) -> None:
    response = server.call("POST", "/api/pull", data=b"" if body is None else json.dumps(body))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == message if message else error.startswith("json: cannot unmarshal")


def test_show_describes_a_pulled_model(pulled: OllamaServe) -> None:
    shown = pulled.post("/api/show", {"model": MODEL}).json()
    assert shown["details"]["family"] == "llama"
    assert shown["model_info"]["general.architecture"] == "llama"
    assert shown["model_info"]["llama.context_length"] == 2048
    assert shown["modelfile"].startswith('# Modelfile generated by "ollama show"')
    assert "stop" in shown["parameters"] and shown["template"]
    assert shown["capabilities"] == ["completion"]


def test_delete_removes_the_model_and_its_blobs(pulled: OllamaServe) -> None:
    assert pulled.call("DELETE", "/api/delete", json={"model": MODEL}).status_code == 200
    assert pulled.call("GET", "/api/tags").json() == {"models": []}
    assert list((pulled.models / "blobs").iterdir()) == []
    again = pulled.call("DELETE", "/api/delete", json={"model": MODEL})
    assert (again.status_code, again.json()) == (404, {"error": f"model '{MODEL}' not found"})


def test_models_persist_across_a_restart(start_server: Callable[..., OllamaServe]) -> None:
    first = start_server()
    first.pull()
    digest = first.call("GET", "/api/tags").json()["models"][0]["digest"]
    assert first.stop() == 0
    assert (first.models / "manifests" / "registry.ollama.ai" / "library" / MODEL / "latest").is_file()

    second = start_server(models=first.models)
    models = second.call("GET", "/api/tags").json()["models"]
    assert [(m["name"], m["digest"], m["size"]) for m in models] == [(MODEL_TAG, digest, TINY_SIZE)]
    reply = second.post("/api/chat", {"model": MODEL, "stream": False, "messages": [{"role": "user", "content": "x"}]})
    assert reply.status_code == 200


def test_tags_digest_is_the_sha256_of_the_manifest(pulled: OllamaServe) -> None:
    """As Ollama's ListHandler gives it: the hex sha256 of the manifest file, no 'sha256:' (what ollama.digest pins);
    another manifest under the same name is another digest."""
    manifest = pulled.models / "manifests" / "registry.ollama.ai" / "library" / MODEL / "latest"
    (listed,) = pulled.call("GET", "/api/tags").json()["models"]
    assert listed["digest"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert HEX64.fullmatch(listed["digest"])
    swapped = json.loads(manifest.read_bytes())
    swapped["layers"].reverse()
    manifest.write_bytes(json.dumps(swapped, separators=(",", ":")).encode())
    (again,) = pulled.call("GET", "/api/tags").json()["models"]
    assert again["digest"] == hashlib.sha256(manifest.read_bytes()).hexdigest() != listed["digest"]


def test_the_role_digest_check_reads_the_double_as_real_ollama(pulled: OllamaServe) -> None:
    """The ollama role's comparison, from the catalog's ollama.digest through the plan's record to /api/tags."""
    (listed,) = pulled.call("GET", "/api/tags").json()["models"]
    catalog = {
        "gateway": {"port": 4000},
        "models": [
            {"name": "tiny", "backend": "ollama", "model": MODEL, "ollama": {"digest": f"sha256:{listed['digest']}"}}
        ],
    }
    [record] = [s for s in build_plan(catalog, ["h1"])["hosts"]["h1"]["services"] if s["backend"] == "ollama"]
    assert record["digests"] == [{"model": MODEL_TAG, "digest": listed["digest"], "name": "tiny"}]
    tags = pulled.call("GET", "/api/tags").json()
    assert ollama_digest_problems(tags, record["digests"], pulled.url("")) == []

    wrong = "0" * 64
    pins = [{**record["digests"][0], "digest": wrong}]
    assert ollama_digest_problems(tags, pins, pulled.url("")) == [
        f"{MODEL_TAG}: Ollama lists digest {listed['digest']}, but llm_stack_catalog's ollama.digest of tiny is "
        f"{wrong}; remove the model (OLLAMA_HOST={pulled.url('')} ollama rm {MODEL_TAG}, as the service account) "
        f"and deploy again to pull it anew, or correct ollama.digest of tiny if {listed['digest']} is the digest "
        "to trust"
    ]
    assert pulled.call("DELETE", "/api/delete", json={"model": MODEL}).status_code == 200
    [problem] = ollama_digest_problems(pulled.call("GET", "/api/tags").json(), record["digests"])
    assert problem.startswith(f"{MODEL_TAG}: Ollama does not list it")


def test_registry_file_can_be_overridden(start_server: Callable[..., OllamaServe], tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    entry = {"size": 1234567, "parameter_size": "10M", "quantization_level": "F16", "family": "phi3"}
    registry.write_text(json.dumps({"acme/widget:v1": entry}))
    server = start_server(OLLAMA_DOUBLE_REGISTRY=str(registry))
    assert server.post("/api/pull", {"model": MODEL, "stream": False}).status_code == 500
    server.pull("acme/widget:v1")
    (model,) = server.call("GET", "/api/tags").json()["models"]
    assert (model["name"], model["size"], model["details"]["family"]) == ("acme/widget:v1", 1234567, "phi3")


def test_unusable_registry_stops_serve(release: Release, tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"broken": {"size": 1}}))
    env = clean_env(tmp_path, OLLAMA_HOST=f"127.0.0.1:{free_port()}", OLLAMA_DOUBLE_REGISTRY=str(registry))
    result = subprocess.run(
        [str(release.binary), "serve"], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 1
    assert "'broken' needs the keys" in result.stderr


# --------------------------------------------------------------------------------------------------
# Native inference API
# --------------------------------------------------------------------------------------------------


def chat_body(content: str = "hi there", **extra: Any) -> dict[str, Any]:
    """An /api/chat request for tiny-llama."""
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def test_chat_streams_ndjson_chunks(pulled: OllamaServe) -> None:
    response = pulled.post("/api/chat", chat_body())
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    chunks = ndjson(response)
    *tokens, final = chunks
    assert len(tokens) >= 3
    for chunk in tokens:
        assert list(chunk) == ["model", "created_at", "message", "done"]
        assert (chunk["model"], chunk["done"], chunk["message"]["role"]) == (MODEL, False, "assistant")
        assert RFC3339_UTC.fullmatch(chunk["created_at"])
    assert "".join(c["message"]["content"] for c in tokens) == "Hello from tiny-llama. You said: hi there"
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert final["eval_count"] == len(tokens)
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_duration",
    ):
        assert isinstance(final[key], int) and final[key] > 0, key
    assert final["total_duration"] >= final["eval_duration"]


def test_chat_stops_at_num_predict(pulled: OllamaServe) -> None:
    *tokens, final = ndjson(pulled.post("/api/chat", chat_body(options={"num_predict": 3})))
    assert [t["message"]["content"] for t in tokens] == ["Hello", " from", " tiny-llama."]
    assert (final["done_reason"], final["eval_count"]) == ("length", 3)


def test_chat_without_streaming(pulled: OllamaServe) -> None:
    response = pulled.post("/api/chat", chat_body("ping", stream=False))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["message"] == {"role": "assistant", "content": "Hello from tiny-llama. You said: ping"}
    assert (body["done"], body["done_reason"], body["eval_count"]) == (True, "stop", 6)


def test_chat_uses_the_last_user_message(pulled: OllamaServe) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]
    body = pulled.post("/api/chat", {"model": MODEL, "messages": messages, "stream": False}).json()
    assert body["message"]["content"] == "Hello from tiny-llama. You said: second"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/chat", chat_body()),
        ("POST", "/api/chat", chat_body(stream=False)),
        ("POST", "/api/generate", {"model": MODEL, "prompt": "x"}),
        ("POST", "/api/show", {"model": MODEL}),
        ("DELETE", "/api/delete", {"model": MODEL}),
    ],
)
def test_models_not_pulled_are_404(server: OllamaServe, method: str, path: str, body: dict[str, Any]) -> None:
    response = server.call(method, path, json=body)
    assert (response.status_code, response.json()) == (404, {"error": f"model '{MODEL}' not found"})


def test_chat_without_a_model_is_400(server: OllamaServe) -> None:
    response = server.post("/api/chat", {"messages": []})
    assert (response.status_code, response.json()) == (400, {"error": "model is required"})


def test_generate_streams_responses(pulled: OllamaServe) -> None:
    *tokens, final = ndjson(pulled.post("/api/generate", {"model": MODEL, "prompt": "why"}))
    assert "".join(t["response"] for t in tokens) == "Hello from tiny-llama. You said: why"
    assert all(t["done"] is False for t in tokens)
    assert (final["done"], final["done_reason"], final["response"]) == (True, "stop", "")
    single = pulled.post("/api/generate", {"model": MODEL, "prompt": "why", "stream": False}).json()
    assert single["response"] == "Hello from tiny-llama. You said: why"


def test_ps_shows_loaded_models_and_keep_alive_zero_unloads(pulled: OllamaServe) -> None:
    assert pulled.call("GET", "/api/ps").json() == {"models": []}
    pulled.post("/api/chat", chat_body(stream=False))
    (loaded,) = pulled.call("GET", "/api/ps").json()["models"]
    assert (loaded["name"], loaded["model"], loaded["context_length"]) == (MODEL_TAG, MODEL_TAG, 8192)
    remaining = datetime.fromisoformat(loaded["expires_at"]).timestamp() - time.time()
    assert 500 < remaining <= 600, "OLLAMA_KEEP_ALIVE=10m"
    unload = pulled.post("/api/chat", {"model": MODEL, "messages": [], "keep_alive": 0}).json()
    assert (unload["done"], unload["done_reason"]) == (True, "unload")
    assert pulled.call("GET", "/api/ps").json() == {"models": []}


def test_bad_keep_alive_is_400(pulled: OllamaServe) -> None:
    response = pulled.post("/api/chat", chat_body(keep_alive="10"))
    assert (response.status_code, response.json()) == (400, {"error": 'time: missing unit in duration "10"'})


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible API
# --------------------------------------------------------------------------------------------------


def test_v1_models_is_null_then_lists_models(server: OllamaServe) -> None:
    assert server.call("GET", "/v1/models").json() == {"object": "list", "data": None}
    server.pull()
    data = server.call("GET", "/v1/models").json()["data"]
    assert len(data) == 1
    assert {k: v for k, v in data[0].items() if k != "created"} == {
        "id": MODEL_TAG,
        "object": "model",
        "owned_by": "library",
    }
    assert abs(data[0]["created"] - time.time()) < 60


def test_v1_retrieve_model(pulled: OllamaServe) -> None:
    found = pulled.call("GET", f"/v1/models/{MODEL_TAG}")
    assert found.status_code == 200
    assert {k: v for k, v in found.json().items() if k != "created"} == {
        "id": MODEL_TAG,
        "object": "model",
        "owned_by": "library",
    }
    missing = pulled.call("GET", "/v1/models/absent:latest")
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "message": "model 'absent:latest' not found",
        "type": "api_error",
        "param": None,
        "code": None,
    }


def test_v1_chat_streams_server_sent_events(pulled: OllamaServe) -> None:
    body = {
        "model": MODEL,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello sse"}]}],
    }
    response = pulled.post("/v1/chat/completions", body)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    *payloads, done = sse_events(response)
    assert done == "[DONE]"
    chunks = [json.loads(payload) for payload in payloads]
    *content, last, usage = chunks
    ids = {chunk["id"] for chunk in chunks}
    assert len(ids) == 1 and re.fullmatch(r"chatcmpl-\d+", ids.pop())
    for chunk in chunks:
        assert (chunk["object"], chunk["model"], chunk["system_fingerprint"]) == (
            "chat.completion.chunk",
            MODEL,
            "fp_ollama",
        )
        assert isinstance(chunk["created"], int)
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["choices"][0]["finish_reason"] is None and c["choices"][0]["index"] == 0 for c in content)
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == "Hello from tiny-llama. You said: hello sse"
    assert last["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]
    assert "usage" not in last
    assert usage["choices"] == []
    tokens = usage["usage"]
    assert tokens["completion_tokens"] == len(content)
    assert tokens["total_tokens"] == tokens["prompt_tokens"] + tokens["completion_tokens"] > len(content)


def test_v1_chat_stream_without_usage(pulled: OllamaServe) -> None:
    body = {"model": MODEL, "stream": True, "max_tokens": 2, "messages": [{"role": "user", "content": "x"}]}
    *payloads, done = sse_events(pulled.post("/v1/chat/completions", body))
    chunks = [json.loads(p) for p in payloads]
    assert done == "[DONE]"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "length"]
    assert all("usage" not in c for c in chunks)


def test_v1_chat_without_streaming_reports_usage(pulled: OllamaServe) -> None:
    body = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "tell me more"}]}
    response = pulled.post("/v1/chat/completions", body)
    assert response.status_code == 200
    completion = response.json()
    assert list(completion) == ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"]
    assert re.fullmatch(r"chatcmpl-\d+", completion["id"])
    assert (completion["object"], completion["model"]) == ("chat.completion", MODEL)
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from tiny-llama. You"},
            "finish_reason": "length",
        }
    ]
    usage = completion["usage"]
    assert usage["completion_tokens"] == 4
    assert usage["total_tokens"] == usage["prompt_tokens"] + 4 and usage["prompt_tokens"] > 0


def test_v1_chat_errors(pulled: OllamaServe) -> None:
    missing = pulled.post("/v1/chat/completions", {"model": "foo", "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"message": "model 'foo' not found", "type": "api_error", "param": None, "code": None}
    }
    bad = pulled.call("POST", "/v1/chat/completions", data=b"{not json")
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert bad.json()["error"]["param"] is None
    empty = pulled.post("/v1/chat/completions", {"model": MODEL, "messages": []})
    assert (empty.status_code, empty.json()["error"]["message"]) == (400, "[] is too short - 'messages'")


# --------------------------------------------------------------------------------------------------
# Pure functions that mirror Ollama's Go code
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("http", "127.0.0.1", 11434)),
        ("0.0.0.0", ("http", "0.0.0.0", 11434)),
        ("127.0.0.1:8080", ("http", "127.0.0.1", 8080)),
        ("http://127.0.0.1:8080", ("http", "127.0.0.1", 8080)),
        ("http://example.com", ("http", "example.com", 80)),
        ("https://example.com", ("https", "example.com", 443)),
        ("[::1]:9000", ("http", "::1", 9000)),
        (":11435", ("http", "", 11435)),
        ('"127.0.0.1:1234"', ("http", "127.0.0.1", 1234)),
        ("127.0.0.1:99999", ("http", "127.0.0.1", 11434)),
    ],
)
def test_ollama_host_parsing(double: ModuleType, value: str, expected: tuple[str, str, int]) -> None:
    assert double.parse_ollama_host(value) == expected


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (999, "999ns"),
        (1_500, "1.5µs"),
        (2_250_000, "2.25ms"),
        (300 * 10**9, "5m0s"),
        (3_601 * 10**9, "1h0m1s"),
    ],
)
def test_go_duration_strings(double: ModuleType, ns: int, text: str) -> None:
    assert double.go_duration(ns) == text
    assert double.parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("name", "display"),
    [
        ("llama3.2", "llama3.2:latest"),
        ("qwen2.5-coder:7b", "qwen2.5-coder:7b"),
        ("library/llama3.2:1b", "llama3.2:1b"),
        ("acme/widget", "acme/widget:latest"),
        ("hf.co/org/model:Q4", "hf.co/org/model:Q4"),
    ],
)
def test_model_names(double: ModuleType, name: str, display: str) -> None:
    assert double.ModelName.parse(name).display() == display


@pytest.mark.parametrize("name", ["", "a/b/c/d", "-bad", "model:", "model:-x"])
def test_invalid_model_names(double: ModuleType, name: str) -> None:
    assert double.ModelName.parse(name) is None
