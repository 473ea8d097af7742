#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test double for Ollama 0.13.5: this program is NOT Ollama and runs no model.

It stands in for the ``ollama`` binary where the real one cannot be obtained, so that a role's real
install path (download the release archive, verify it, extract it, run ``bin/ollama serve``, pull
models through the API) can be tested end to end. Python 3.11+, standard library only.

What it imitates, with the shapes and messages of Ollama v0.13.5's source:

* ``ollama serve``: the HTTP API on ``OLLAMA_HOST`` (``/``, ``/api/version``, ``/api/tags``,
  ``/api/pull``, ``/api/show``, ``/api/delete``, ``/api/ps``, ``/api/chat``, ``/api/generate``,
  ``/v1/models``, ``/v1/models/<model>``, ``/v1/chat/completions``), a gin-style log line per request
  on stderr, and a clean exit on SIGTERM or SIGINT.
* ``ollama -v`` / ``ollama --version``: ``ollama version is 0.13.5`` when a server answers, and the real
  client's two warning lines when none does.
* ``ollama list`` / ``ollama ls``: the model table, read through the API.

Pulled models are written under ``OLLAMA_MODELS`` in Ollama's own layout (``manifests/<host>/<namespace>/
<model>/<tag>`` and ``blobs/sha256-<hex>``; the large model-weights blob is never written), so they
survive a restart. The models that can be pulled come from a JSON "registry" file:
``<dir of the executable>/../lib/ollama/registry.json``, or the file named by ``OLLAMA_DOUBLE_REGISTRY``;
without either, the built-in ``DEFAULT_REGISTRY``. Each entry maps a model name (``name`` means
``name:latest``) to ``{"size", "parameter_size", "quantization_level", "family"}`` and an optional
``"context_length"``.

Replies are deterministic text ("Hello from <model>. You said: <last user message>") sent one word
per token. The double marks itself only where real clients do not look: an ``X-Test-Double: ollama``
header on every HTTP response and ``test_double=ollama`` in the startup log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import math
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

VERSION = "0.13.5"
DOUBLE_HEADER = "X-Test-Double"
DOUBLE_NAME = "ollama"

DEFAULT_PORT = 11434
DEFAULT_KEEP_ALIVE_S = 300.0
DEFAULT_CONTEXT_LENGTH = 4096
DEFAULT_MAX_LOADED = 3
FOREVER_NS = 2**63 - 1
DEFAULT_REGISTRY_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"

TOKEN_DELAY_S = 0.005
PULL_STEP_DELAY_S = 0.02
LOAD_DELAY_S = 0.02

DEFAULT_REGISTRY: dict[str, dict[str, Any]] = {
    "tiny-llama:latest": {
        "size": 637700138,
        "parameter_size": "1.1B",
        "quantization_level": "Q4_0",
        "family": "llama",
        "context_length": 2048,
    },
    "llama3.2:latest": {
        "size": 2019393189,
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "family": "llama",
        "context_length": 131072,
    },
    "qwen2.5-coder:7b": {
        "size": 4683087332,
        "parameter_size": "7.6B",
        "quantization_level": "Q4_K_M",
        "family": "qwen2",
        "context_length": 32768,
    },
}

REGISTRY_KEYS = ("size", "parameter_size", "quantization_level", "family")
TEMPLATES = {
    "llama": "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "qwen2": "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n",
}
STOP_TOKENS = {"llama": "<|eot_id|>", "qwen2": "<|im_end|>"}


# --------------------------------------------------------------------------------------------------
# Go compatibility: JSON, times, durations, sizes, log lines
# --------------------------------------------------------------------------------------------------


def go_json(value: Any, *, newline: bool = False) -> bytes:
    """Encode like Go's encoding/json: compact, UTF-8, with <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(raw, escaped)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return (text + ("\n" if newline else "")).encode()


def rfc3339(ns: int | None = None, *, local: bool = False, digits: int = 9) -> str:
    """Format a time like Go's RFC3339Nano (trailing zeros trimmed); UTC unless local."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    tm = time.localtime(secs) if local else time.gmtime(secs)
    offset = tm.tm_gmtoff if local else 0
    fraction = f"{frac:09d}"[:digits].rstrip("0")
    zone = "Z"
    if offset:
        sign = "+" if offset > 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + (f".{fraction}" if fraction else "") + zone


def _go_fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    digits = len(str(unit)) - 1
    tail = f"{frac:0{digits}d}".rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)


def go_duration(ns: int) -> str:
    """Format nanoseconds like Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign, value = ("-" if ns < 0 else ""), abs(ns)
    if value < 1_000:
        return f"{sign}{value}ns"
    if value < 1_000_000:
        return f"{sign}{_go_fraction(value, 1_000)}µs"
    if value < 1_000_000_000:
        return f"{sign}{_go_fraction(value, 1_000_000)}ms"
    secs = value // 1_000_000_000
    hours, rest = divmod(secs, 3600)
    minutes = rest // 60
    seconds = _go_fraction(value - (hours * 3600 + minutes * 60) * 1_000_000_000, 1_000_000_000)
    head = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return f"{sign}{head}{seconds}s"


_DURATION_UNITS = {"ns": 1, "us": 1e3, "µs": 1e3, "μs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")


def parse_go_duration(text: str) -> int:
    """Parse like Go's time.ParseDuration, returning nanoseconds; ValueError carries Go's message."""
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if not match:
            raise ValueError(f'time: invalid duration "{text}"')
        number, unit = match.groups()
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * _DURATION_UNITS[unit]
        pos = match.end()
    return int(-total if negative else total)


def human_bytes(size: int) -> str:
    """Format a size like Ollama's format.HumanBytes (decimal units)."""
    for limit, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB")):
        if size >= limit:
            value = size / limit
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def human_time(seconds_ago: float) -> str:
    """Format an age like Ollama's format.HumanTime ("2 weeks ago")."""
    seconds = int(seconds_ago)
    if seconds < 1:
        text = "Less than a second"
    elif seconds == 1:
        text = "1 second"
    elif seconds < 60:
        text = f"{seconds} seconds"
    elif seconds < 120:
        text = "About a minute"
    elif seconds < 3600:
        text = f"{seconds // 60} minutes"
    else:
        hours = round(seconds / 3600)
        text = _human_hours(hours, seconds)
    return f"{text} ago"


def _human_hours(hours: int, seconds: int) -> str:
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{seconds // 3600 // 24 // 365} years"


def _slog_value(value: Any) -> str:
    text = str(value)
    if text and not re.search(r'[\s="\\]', text) and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False)


def log(level: str, source: str, msg: str, **attrs: Any) -> None:
    """Write one line in the shape of Ollama's slog text logs to stderr."""
    parts = [f"time={rfc3339(local=True, digits=3)}", f"level={level}", f"source={source}"]
    parts.append(f"msg={_slog_value(msg)}")
    parts.extend(f"{key}={_slog_value(value)}" for key, value in attrs.items())
    sys.stderr.write(" ".join(parts) + "\n")
    sys.stderr.flush()


def log_request(status: int, started: float, client_ip: str, method: str, path: str) -> None:
    """Write one gin-style access log line to stderr."""
    stamp = time.strftime("%Y/%m/%d - %H:%M:%S")
    latency = go_duration(int((time.perf_counter() - started) * 1e9))
    sys.stderr.write(f'[GIN] {stamp} | {status:3d} | {latency:>13} | {client_ip:>15} | {method:<7} "{path}"\n')
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------------
# Settings from the environment, as envconfig reads them
# --------------------------------------------------------------------------------------------------


def env_var(key: str) -> str:
    """Read an environment variable like envconfig.Var: trimmed of spaces and quotes."""
    return os.environ.get(key, "").strip().strip("\"'")


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Split like Go's net.SplitHostPort; None where Go reports an error."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or hostport[end + 1 : end + 2] != ":":
            return None
        return hostport[1:end], hostport[end + 2 :]
    if hostport.count(":") != 1:
        return None
    host, port = hostport.split(":")
    return host, port


def parse_ollama_host(value: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) for an OLLAMA_HOST value, following envconfig.Host."""
    default_port = str(DEFAULT_PORT)
    text = value.strip().strip("\"'")
    scheme, sep, hostport = text.partition("://")
    if not sep:
        scheme, hostport = "http", text
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport = hostport.split("/", 1)[0]
    split = _split_host_port(hostport)
    if split is None:
        host, port = "127.0.0.1", default_port
        if hostport:
            host = hostport.strip("[]")
    else:
        host, port = split
    if not port.isdigit() or int(port) > 65535:
        log("WARN", "config.go:49", "invalid port, using default", port=port, default=default_port)
        port = default_port
    return scheme, host, int(port)


def _env_uint(key: str, default: int) -> int:
    text = env_var(key)
    if not text:
        return default
    if text.isdigit():
        return int(text)
    log("WARN", "config.go:224", "invalid environment variable, using default", key=key, value=text)
    return default


def _env_keep_alive() -> float:
    text = env_var("OLLAMA_KEEP_ALIVE")
    seconds = DEFAULT_KEEP_ALIVE_S
    if text:
        try:
            seconds = parse_go_duration(text) / 1e9
        except ValueError:
            if re.fullmatch(r"[-+]?\d+", text):
                seconds = float(int(text))
    return math.inf if seconds < 0 else seconds


def default_registry_path() -> Path:
    """``<dir of this executable>/../lib/ollama/registry.json``, symlinks resolved as Ollama does."""
    return Path(__file__).resolve().parent.parent / "lib" / "ollama" / "registry.json"


@dataclass(frozen=True)
class Settings:
    """The server configuration read from OLLAMA_* variables."""

    scheme: str
    host: str
    port: int
    models_dir: Path
    keep_alive_s: float
    num_parallel: int
    max_loaded: int
    context_length: int
    registry_path: Path | None

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings the way Ollama's envconfig does."""
        scheme, host, port = parse_ollama_host(env_var("OLLAMA_HOST"))
        models = env_var("OLLAMA_MODELS")
        override = env_var("OLLAMA_DOUBLE_REGISTRY")
        registry = Path(override) if override else default_registry_path()
        return cls(
            scheme=scheme,
            host=host,
            port=port,
            models_dir=Path(models) if models else Path.home() / ".ollama" / "models",
            keep_alive_s=_env_keep_alive(),
            num_parallel=_env_uint("OLLAMA_NUM_PARALLEL", 1),
            max_loaded=_env_uint("OLLAMA_MAX_LOADED_MODELS", 0),
            context_length=_env_uint("OLLAMA_CONTEXT_LENGTH", DEFAULT_CONTEXT_LENGTH),
            registry_path=registry if (override or registry.is_file()) else None,
        )

    @property
    def client_host(self) -> str:
        """The address a local client connects to."""
        return self.host or "127.0.0.1"

    def env_summary(self) -> str:
        """The ``env="map[...]"`` value of the server config log line."""
        keep_ns = FOREVER_NS if math.isinf(self.keep_alive_s) else int(self.keep_alive_s * 1e9)
        host = f"[{self.host}]" if ":" in self.host else self.host
        values = {
            "OLLAMA_CONTEXT_LENGTH": self.context_length,
            "OLLAMA_HOST": f"{self.scheme}://{host}:{self.port}",
            "OLLAMA_KEEP_ALIVE": go_duration(keep_ns),
            "OLLAMA_MAX_LOADED_MODELS": self.max_loaded,
            "OLLAMA_MODELS": self.models_dir,
            "OLLAMA_NUM_PARALLEL": self.num_parallel,
        }
        return "map[" + " ".join(f"{key}:{value}" for key, value in values.items()) + "]"


# --------------------------------------------------------------------------------------------------
# Model names, as model.ParseName reads them
# --------------------------------------------------------------------------------------------------

_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")


@dataclass(frozen=True)
class ModelName:
    """A fully qualified model name: host/namespace/model:tag."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ModelName | None:
        """Parse a name, filling Ollama's defaults; None when the name is invalid."""
        text = text.split("@", 1)[0]
        head, sep, tag = text.rpartition(":")
        if not sep or "/" in tag:
            head, tag = text, "latest"
        parts = head.split("/")
        if len(parts) > 3:
            return None
        defaults = [DEFAULT_REGISTRY_HOST, DEFAULT_NAMESPACE]
        host, namespace = (defaults[: 3 - len(parts)] + parts[:-1])[-2:]
        name = cls(host, namespace, parts[-1], tag)
        return name if name.is_valid() else None

    def is_valid(self) -> bool:
        """Whether every part is one Ollama accepts."""
        return bool(
            _HOST.fullmatch(self.host)
            and _PART.fullmatch(self.namespace)
            and _PART.fullmatch(self.model)
            and _TAG.fullmatch(self.tag)
        )

    @property
    def key(self) -> str:
        """A case-insensitive identity for lookups."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}".lower()

    def display(self) -> str:
        """The shortest form, as DisplayShortest prints it ("llama3.2:latest")."""
        if self.host != DEFAULT_REGISTRY_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def manifest_parts(self) -> tuple[str, str, str, str]:
        """Path parts of the manifest under ``manifests/``."""
        return self.host, self.namespace, self.model, self.tag


# --------------------------------------------------------------------------------------------------
# The registry of pullable models
# --------------------------------------------------------------------------------------------------


class RegistryError(Exception):
    """The registry file cannot be used."""


@dataclass(frozen=True)
class RegistryEntry:
    """What the double knows about a pullable model."""

    size: int
    parameter_size: str
    quantization_level: str
    family: str
    context_length: int


def parse_registry(data: Any, origin: str) -> dict[str, RegistryEntry]:
    """Validate registry data and key it by ModelName.key."""
    if not isinstance(data, dict):
        raise RegistryError(f"{origin}: expected an object mapping model names to entries")
    entries: dict[str, RegistryEntry] = {}
    for raw_name, entry in data.items():
        name = ModelName.parse(raw_name)
        if name is None:
            raise RegistryError(f"{origin}: {raw_name!r} is not a valid model name")
        if not isinstance(entry, dict) or any(key not in entry for key in REGISTRY_KEYS):
            raise RegistryError(f"{origin}: {raw_name!r} needs the keys {', '.join(REGISTRY_KEYS)}")
        size, context = entry["size"], entry.get("context_length", DEFAULT_CONTEXT_LENGTH)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise RegistryError(f"{origin}: {raw_name!r} size must be a positive integer")
        if not isinstance(context, int) or isinstance(context, bool) or context <= 0:
            raise RegistryError(f"{origin}: {raw_name!r} context_length must be a positive integer")
        texts = [entry[key] for key in REGISTRY_KEYS[1:]]
        if not all(isinstance(text, str) and text for text in texts):
            raise RegistryError(f"{origin}: {raw_name!r} needs non-empty strings in {REGISTRY_KEYS[1:]}")
        entries[name.key] = RegistryEntry(size, *texts, context)
    return entries


def load_registry(path: Path | None) -> dict[str, RegistryEntry]:
    """Read the registry file, or the built-in registry when there is none."""
    if path is None:
        return parse_registry(DEFAULT_REGISTRY, "built-in registry")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read registry {path}: {exc}") from exc
    return parse_registry(data, str(path))


# --------------------------------------------------------------------------------------------------
# The model store: manifests and blobs under OLLAMA_MODELS
# --------------------------------------------------------------------------------------------------

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PARAMS = "application/vnd.ollama.image.params"


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of data."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """One blob of a model: its descriptor and, for the small ones, its content."""

    media_type: str
    digest: str
    size: int
    content: bytes | None

    def descriptor(self) -> dict[str, Any]:
        """The manifest descriptor of this blob."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def _blob(media_type: str, content: bytes) -> Layer:
    return Layer(media_type, "sha256:" + sha256_hex(content), len(content), content)


def build_layers(name: ModelName, entry: RegistryEntry) -> tuple[list[Layer], Layer]:
    """The manifest layers and config blob the double's registry serves for a model."""
    template = TEMPLATES.get(entry.family, "{{ .System }}\n{{ .Prompt }}").encode()
    stop = STOP_TOKENS.get(entry.family, "</s>")
    small = [_blob(MEDIA_TEMPLATE, template), _blob(MEDIA_PARAMS, go_json({"stop": [stop]}))]
    model_digest = "sha256:" + sha256_hex(f"ollama-test-double:{name.key}".encode())
    config = _blob(MEDIA_CONFIG, _config_json(entry, [model_digest] + [layer.digest for layer in small]))
    model_size = max(entry.size - sum(layer.size for layer in [*small, config]), 1)
    return [Layer(MEDIA_MODEL, model_digest, model_size, None), *small], config


def _config_json(entry: RegistryEntry, diff_ids: list[str]) -> bytes:
    return go_json(
        {
            "model_format": "gguf",
            "model_family": entry.family,
            "model_families": [entry.family],
            "model_type": entry.parameter_size,
            "file_type": entry.quantization_level,
            "context_length": entry.context_length,
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )


@dataclass
class StoredModel:
    """A pulled model as read back from its manifest."""

    name: ModelName
    digest: str
    size: int
    modified_ns: int
    config: dict[str, Any]
    config_digest: str
    layers: list[dict[str, Any]]
    path: Path

    def digests(self) -> set[str]:
        """Every blob this model uses."""
        return {layer["digest"] for layer in self.layers} | {self.config_digest}

    def details(self) -> dict[str, Any]:
        """The ``details`` object of Ollama's API."""
        return {
            "parent_model": "",
            "format": self.config.get("model_format", ""),
            "family": self.config.get("model_family", ""),
            "families": self.config.get("model_families"),
            "parameter_size": self.config.get("model_type", ""),
            "quantization_level": self.config.get("file_type", ""),
        }


class ModelStore:
    """Manifests and blobs in Ollama's on-disk layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()

    @property
    def manifests(self) -> Path:
        """The manifests directory."""
        return self.root / "manifests"

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives (``blobs/sha256-<hex>``)."""
        return self.root / "blobs" / digest.replace(":", "-")

    def manifest_path(self, name: ModelName) -> Path:
        """Where a model's manifest lives."""
        return self.manifests.joinpath(*name.manifest_parts())

    def has_blob(self, layer: Layer) -> bool:
        """Whether a layer is already here: its blob file, or (weights) a manifest naming it."""
        if layer.content is not None:
            return self.blob_path(layer.digest).is_file()
        return any(layer.digest in m.digests() for m in self.list())

    def write_blob(self, layer: Layer) -> None:
        """Store a small blob; the weights blob is never written."""
        if layer.content is None:
            return
        path = self.blob_path(layer.digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(layer.content)

    def write_manifest(self, name: ModelName, layers: list[Layer], config: Layer) -> None:
        """Write the manifest of a pulled model."""
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
        path = self.manifest_path(name)
        with self.lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(go_json(manifest))

    def read(self, path: Path) -> StoredModel | None:
        """Read one manifest; None when it is not a model manifest."""
        rel = path.relative_to(self.manifests).parts
        name = ModelName.parse(f"{rel[0]}/{rel[1]}/{rel[2]}:{rel[3]}")
        try:
            raw = path.read_bytes()
            manifest = json.loads(raw)
            config_digest = manifest["config"]["digest"]
            config = json.loads(self.blob_path(config_digest).read_bytes())
            layers = manifest["layers"]
            size = sum(int(layer["size"]) for layer in layers) + int(manifest["config"]["size"])
            modified = path.stat().st_mtime_ns
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if name is None:
            return None
        return StoredModel(name, sha256_hex(raw), size, modified, config, config_digest, layers, path)

    def list(self) -> list[StoredModel]:
        """All pulled models, most recently modified first."""
        with self.lock:
            paths = [p for p in self.manifests.glob("*/*/*/*") if p.is_file()]
            models = [m for m in (self.read(p) for p in paths) if m is not None]
        return sorted(models, key=lambda m: m.modified_ns // 1_000_000_000, reverse=True)

    def get(self, name: ModelName) -> StoredModel | None:
        """A pulled model by name, compared case-insensitively as getExistingName does."""
        return next((m for m in self.list() if m.name.key == name.key), None)

    def delete(self, model: StoredModel) -> None:
        """Remove a manifest, prune empty directories, and drop blobs no other manifest uses."""
        with self.lock:
            model.path.unlink()
            parent = model.path.parent
            while parent != self.manifests and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
            used = set().union(*(m.digests() for m in self.list()))
            for digest in model.digests() - used:
                self.blob_path(digest).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Loaded models (what /api/ps shows) and keep_alive
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model the scheduler holds "in memory"."""

    model: StoredModel
    context_length: int
    keep_alive_s: float
    expires_at: float
    semaphore: threading.Semaphore
    in_use: int = 0

    def ps_entry(self) -> dict[str, Any]:
        """The ``/api/ps`` entry for this model."""
        expires = time.time() + self.keep_alive_s if self.in_use else self.expires_at
        expires_ns = time.time_ns() + FOREVER_NS if math.isinf(expires) else int(expires * 1e9)
        name = self.model.name.display()
        return {
            "name": name,
            "model": name,
            "size": self.model.size,
            "digest": self.model.digest,
            "details": self.model.details(),
            "expires_at": rfc3339(min(expires_ns, 253402300799 * 10**9), local=True),
            "size_vram": self.model.size,
            "context_length": self.context_length,
        }


class Scheduler:
    """Loads models on demand, limits parallel requests and unloads after keep_alive."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.loaded: dict[str, LoadedModel] = {}

    def _expire(self, now: float) -> None:
        for key, loaded in list(self.loaded.items()):
            if not loaded.in_use and loaded.expires_at <= now:
                del self.loaded[key]

    def _evict_for(self, key: str) -> None:
        limit = self.settings.max_loaded or DEFAULT_MAX_LOADED
        idle = sorted((m.expires_at, k) for k, m in self.loaded.items() if not m.in_use and k != key)
        while len(self.loaded) >= limit and key not in self.loaded and idle:
            del self.loaded[idle.pop(0)[1]]

    def acquire(self, model: StoredModel, keep_alive_s: float | None, num_ctx: int | None) -> tuple[int, LoadedModel]:
        """Load (if needed) and reserve a model; returns the load time in ns and the loaded model."""
        key = model.name.key
        keep = self.settings.keep_alive_s if keep_alive_s is None else keep_alive_s
        with self.lock:
            now = time.time()
            self._expire(now)
            self._evict_for(key)
            loaded = self.loaded.get(key)
            fresh = loaded is None
            if loaded is None:
                context = num_ctx or self.settings.context_length
                semaphore = threading.Semaphore(max(self.settings.num_parallel, 1))
                loaded = LoadedModel(model, context, keep, now + keep, semaphore)
                self.loaded[key] = loaded
            loaded.keep_alive_s = keep
            loaded.in_use += 1
        started = time.perf_counter_ns()
        if fresh:
            time.sleep(LOAD_DELAY_S)
        loaded.semaphore.acquire()
        return time.perf_counter_ns() - started, loaded

    def release(self, loaded: LoadedModel) -> None:
        """End a request; unload now for keep_alive 0, else restart the keep_alive clock."""
        loaded.semaphore.release()
        with self.lock:
            loaded.in_use -= 1
            loaded.expires_at = time.time() + loaded.keep_alive_s
            if loaded.keep_alive_s == 0 and not loaded.in_use:
                self.loaded.pop(loaded.model.name.key, None)

    def unload(self, model: StoredModel) -> None:
        """Drop a model from memory (keep_alive 0 with nothing to generate, or delete)."""
        with self.lock:
            self.loaded.pop(model.name.key, None)

    def running(self) -> list[dict[str, Any]]:
        """The ``/api/ps`` list, longest remaining time first."""
        with self.lock:
            self._expire(time.time())
            entries = [m.ps_entry() for m in self.loaded.values()]
        return sorted(entries, key=lambda e: e["expires_at"], reverse=True)


# --------------------------------------------------------------------------------------------------
# Text generation
# --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a request will generate: word tokens, why it stops, how many prompt tokens it had."""

    tokens: list[str]
    done_reason: str
    prompt_eval_count: int


def reply_text(model: ModelName, user_text: str) -> str:
    """The deterministic reply of the double."""
    said = " ".join(user_text.split())
    return f"Hello from {model.model}. " + (f"You said: {said}" if said else "You said nothing.")


def plan_reply(model: ModelName, user_text: str, prompt_words: int, num_predict: Any) -> Plan:
    """Split the reply into word tokens and cut it at num_predict (values <= 0 mean no limit)."""
    words = reply_text(model, user_text).split(" ")
    tokens = words[:1] + [" " + word for word in words[1:]]
    reason = "stop"
    if isinstance(num_predict, int | float) and not isinstance(num_predict, bool) and num_predict > 0:
        if len(tokens) >= num_predict:
            tokens, reason = tokens[: int(num_predict)], "length"
    return Plan(tokens, reason, max(prompt_words, 1))


def message_text(content: Any) -> str:
    """Text of a message content: a string, or OpenAI-style parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def chat_plan(model: ModelName, messages: list[dict[str, Any]], options: dict[str, Any]) -> Plan:
    """Plan the reply to a chat: the last user message, with a template overhead per message."""
    texts = [message_text(m.get("content")) for m in messages]
    last_user = next(
        (t for m, t in zip(reversed(messages), reversed(texts), strict=True) if m.get("role") == "user"), ""
    )
    words = sum(len(t.split()) for t in texts) + 4 * len(messages)
    return plan_reply(model, last_user, words, options.get("num_predict"))


@dataclass
class Timing:
    """Durations of one generation, for the final chunk's metrics."""

    started_ns: int
    load_ns: int
    eval_started_ns: int = 0
    eval_ns: int = 0

    def metrics(self, plan: Plan) -> dict[str, int]:
        """Ollama's Metrics fields (zeros are omitted, as omitempty does)."""
        values = {
            "total_duration": time.perf_counter_ns() - self.started_ns,
            "load_duration": self.load_ns,
            "prompt_eval_count": plan.prompt_eval_count,
            "prompt_eval_duration": plan.prompt_eval_count * 250_000,
            "eval_count": len(plan.tokens),
            "eval_duration": self.eval_ns,
        }
        return {key: value for key, value in values.items() if value}


def emit_tokens(plan: Plan, timing: Timing, emit: Callable[[str], None]) -> None:
    """Hand each token to emit, with a small per-token delay."""
    timing.eval_started_ns = time.perf_counter_ns()
    for token in plan.tokens:
        time.sleep(TOKEN_DELAY_S)
        emit(token)
    timing.eval_ns = time.perf_counter_ns() - timing.eval_started_ns


# --------------------------------------------------------------------------------------------------
# Request decoding with Go-like errors
# --------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(Exception):
    """A request body Ollama would refuse with 400."""


GO_TYPES = {str: "string", bool: "bool", list: "array", dict: "object", int: "number", float: "number"}
FieldSpec = dict[str, tuple[type | tuple[type, ...], str]]

CHAT_FIELDS: FieldSpec = {
    "model": (str, "string"),
    "messages": (list, "[]api.Message"),
    "stream": (bool, "bool"),
    "options": (dict, "map[string]interface {}"),
}
GENERATE_FIELDS: FieldSpec = {
    "model": (str, "string"),
    "prompt": (str, "string"),
    "system": (str, "string"),
    "stream": (bool, "bool"),
    "options": (dict, "map[string]interface {}"),
}
NAME_FIELDS: FieldSpec = {"model": (str, "string"), "name": (str, "string"), "stream": (bool, "bool")}
OPENAI_CHAT_FIELDS: FieldSpec = {
    "model": (str, "string"),
    "messages": (list, "[]openai.Message"),
    "stream": (bool, "bool"),
    "stream_options": (dict, "openai.StreamOptions"),
    "max_tokens": ((int, float), "int"),
}


def _json_kind(value: Any) -> str:
    return GO_TYPES.get(type(value), "value")


def decode_body(body: bytes, struct: str, fields: FieldSpec) -> dict[str, Any]:
    """Decode a JSON object body the way gin's ShouldBindJSON fails or succeeds."""
    if not body.strip():
        raise EOFError("EOF")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(exc.doc.rstrip()):
            raise BadRequest("unexpected EOF") from exc
        raise BadRequest(f"invalid character {exc.doc[exc.pos]!r} looking for beginning of value") from exc
    short = struct.rsplit(".", maxsplit=1)[-1]
    if not isinstance(data, dict):
        raise BadRequest(f"json: cannot unmarshal {_json_kind(data)} into Go value of type {struct}")
    for key, (expected, go_type) in fields.items():
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            kind = _json_kind(value)
            raise BadRequest(f"json: cannot unmarshal {kind} into Go struct field {short}.{key} of type {go_type}")
    for message in data.get("messages") or []:
        if not isinstance(message, dict):
            raise BadRequest(
                f"json: cannot unmarshal {_json_kind(message)} into Go struct field {short}.messages of type "
                "api.Message"
            )
    return data


def keep_alive_seconds(value: Any) -> float | None:
    """Decode api.Duration: seconds as a number, or a Go duration string; negative means forever."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return math.inf if value < 0 else float(value)
    if isinstance(value, str):
        try:
            ns = parse_go_duration(value)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc
        return math.inf if ns < 0 else ns / 1e9
    kind = {bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}.get(type(value), "unknown")
    raise ApiError(400, f"Unsupported type: '{kind}'")


# --------------------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------------------


class App:
    """The state one ``ollama serve`` holds."""

    def __init__(self, settings: Settings, registry: dict[str, RegistryEntry]) -> None:
        self.settings = settings
        self.registry = registry
        self.store = ModelStore(settings.models_dir)
        self.scheduler = Scheduler(settings)

    def find_model(
        self, raw: Any, *, invalid_status: int = 400, invalid_message: str = "model is required"
    ) -> StoredModel:
        """A pulled model, or the ApiError Ollama answers for a missing or unknown one."""
        name = ModelName.parse(raw) if isinstance(raw, str) else None
        if name is None:
            raise ApiError(invalid_status, invalid_message)
        model = self.store.get(name)
        if model is None:
            raise ApiError(404, f"model '{raw}' not found")
        return model

    def pull(self, raw: str) -> Iterator[dict[str, Any]]:
        """Progress of a pull, as PullModel reports it; raises ApiError(500) after "pulling manifest"."""
        name = ModelName.parse(raw)
        if name is None:
            raise ApiError(400, "invalid model name")
        yield {"status": "pulling manifest"}
        entry = self.registry.get(name.key)
        if entry is None:
            time.sleep(PULL_STEP_DELAY_S)
            raise ApiError(500, "pull model manifest: file does not exist")
        layers, config = build_layers(name, entry)
        for layer in [*layers, config]:
            yield from self._pull_layer(layer)
        yield {"status": "verifying sha256 digest"}
        yield {"status": "writing manifest"}
        self.store.write_manifest(name, layers, config)
        yield {"status": "success"}

    def _pull_layer(self, layer: Layer) -> Iterator[dict[str, Any]]:
        status = {"status": f"pulling {layer.digest[7:19]}", "digest": layer.digest, "total": layer.size}
        if self.store.has_blob(layer):
            yield {**status, "completed": layer.size}
            return
        steps = 4 if layer.content is None else 1
        for step in range(steps + 1):
            completed = layer.size * step // steps
            yield {**status, "completed": completed} if completed else dict(status)
            if step < steps:
                time.sleep(PULL_STEP_DELAY_S)
        self.store.write_blob(layer)

    def show(self, model: StoredModel) -> dict[str, Any]:
        """The ``/api/show`` response for a pulled model."""
        family = model.config.get("model_family", "")
        params = self._read_json_layer(model, MEDIA_PARAMS)
        lines = [
            f"{key:<30} {json.dumps(v)}" for key, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])
        ]
        template = self._read_layer(model, MEDIA_TEMPLATE)
        weights = next((d["digest"] for d in model.layers if d["mediaType"] == MEDIA_MODEL), "")
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {model.name.display()}\n\nFROM {self.store.blob_path(weights)}\n"
            f'TEMPLATE """{template}"""\n' + "".join(f"PARAMETER {line}\n" for line in lines)
        )
        return {
            "modelfile": modelfile,
            "parameters": "\n".join(lines),
            "template": template,
            "details": model.details(),
            "model_info": {
                "general.architecture": family,
                "general.file_type": 2,
                "general.parameter_count": parameter_count(model.config.get("model_type", "")),
                "general.quantization_version": 2,
                f"{family}.context_length": model.config.get("context_length", DEFAULT_CONTEXT_LENGTH),
            },
            "capabilities": ["completion"],
            "modified_at": rfc3339(model.modified_ns, local=True),
        }

    def _read_layer(self, model: StoredModel, media_type: str) -> str:
        digest = next((d["digest"] for d in model.layers if d["mediaType"] == media_type), None)
        if digest is None:
            return ""
        try:
            return self.store.blob_path(digest).read_text(encoding="utf-8")
        except OSError:
            return ""

    def _read_json_layer(self, model: StoredModel, media_type: str) -> dict[str, Any]:
        try:
            data = json.loads(self._read_layer(model, media_type) or "{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def tags_entry(self, model: StoredModel) -> dict[str, Any]:
        """One ``/api/tags`` entry."""
        name = model.name.display()
        return {
            "name": name,
            "model": name,
            "modified_at": rfc3339(model.modified_ns, local=True),
            "size": model.size,
            "digest": model.digest,
            "details": model.details(),
        }


def parameter_count(text: str) -> int:
    """ "7.6B" -> 7600000000."""
    match = re.fullmatch(r"([\d.]+)([KMBT]?)", text)
    if not match:
        return 0
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[match.group(2)]
    return int(float(match.group(1)) * scale)


class OllamaServer(ThreadingHTTPServer):
    """ThreadingHTTPServer bound like Go's listener (SO_REUSEADDR, IPv6 when the host is one)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: App) -> None:
        self.app = app
        host = app.settings.host
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, app.settings.port), Handler)


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    """Routes requests to Ollama's endpoints and writes Go-shaped responses."""

    protocol_version = "HTTP/1.1"
    server: OllamaServer

    # -- plumbing ------------------------------------------------------------------------------

    def send_response(self, code: int, message: str | None = None) -> None:
        """Like the base class, but without a Server header (Go sends none)."""
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())
        self._status = code

    def end_headers(self) -> None:
        """Mark every response as coming from the test double."""
        self.send_header(DOUBLE_HEADER, DOUBLE_NAME)
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once, gin-style, when they finish."""

    def log_message(self, format: str, *args: Any) -> None:
        """Protocol errors from the base class."""
        sys.stderr.write(f"[GIN-debug] {self.address_string()} {format % args}\n")

    @property
    def app(self) -> App:
        """The server's state."""
        return self.server.app

    def send_body(self, status: int, body: bytes, content_type: str | None) -> None:
        """A complete response with Content-Length (no body for HEAD)."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value: Any, content_type: str = "application/json; charset=utf-8") -> None:
        """gin's c.JSON."""
        self.send_body(status, go_json(value), content_type)

    def start_stream(self, content_type: str) -> None:
        """Begin a chunked 200 response."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._streaming = True

    def write_chunk(self, data: bytes) -> None:
        """Send one chunk of a streamed response."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        """Finish a chunked response."""
        self.wfile.write(b"0\r\n\r\n")
        self._streaming = False

    def read_body(self) -> bytes:
        """The request body, Content-Length or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def body_json(self, struct: str, fields: FieldSpec) -> dict[str, Any]:
        """The decoded body; ApiError(400) with gin's messages when it cannot be decoded."""
        try:
            return decode_body(self.read_body(), struct, fields)
        except EOFError as exc:
            raise ApiError(400, "missing request body") from exc
        except BadRequest as exc:
            raise ApiError(400, str(exc)) from exc

    # -- dispatch ------------------------------------------------------------------------------

    def handle_one_request(self) -> None:
        """Reset per-request state before the base class reads the request."""
        self._status = 0
        self._streaming = False
        super().handle_one_request()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        path = unquote(urlsplit(self.path).path)
        try:
            route = self._route(path)
            route(self)
        except ApiError as exc:
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            log("ERROR", "ollama_double.py", "request failed", path=path, error=repr(exc))
            self._send_error(ApiError(500, str(exc)))
        finally:
            log_request(self._status or 500, started, self.client_address[0], self.command, path)

    def _send_error(self, exc: ApiError) -> None:
        if self._streaming:
            with contextlib.suppress(OSError):
                self.write_chunk(go_json({"error": exc.message}, newline=True))
                self.end_stream()
            return
        if self._status:
            self.close_connection = True
            return
        with contextlib.suppress(OSError):
            self.send_json(exc.status, {"error": exc.message})

    def _route(self, path: str) -> Route:
        if path.startswith("/v1/models/") and len(path) > len("/v1/models/") and "/" not in path[11:]:
            methods = {"GET": Handler.v1_retrieve}
        else:
            methods = ROUTES.get(path)
        if methods is None:
            return Handler.not_found
        return methods.get(self.command, Handler.method_not_allowed)

    do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _dispatch

    def not_found(self) -> None:
        """gin's 404."""
        self.send_body(404, b"404 page not found", "text/plain")

    def method_not_allowed(self) -> None:
        """gin's 405 (HandleMethodNotAllowed is on)."""
        self.send_body(405, b"405 method not allowed", "text/plain")

    # -- general -------------------------------------------------------------------------------

    def root(self) -> None:
        """GET/HEAD /."""
        self.send_body(200, b"Ollama is running", "text/plain; charset=utf-8")

    def version(self) -> None:
        """GET/HEAD /api/version."""
        self.send_json(200, {"version": VERSION})

    # -- model management ----------------------------------------------------------------------

    def tags(self) -> None:
        """GET/HEAD /api/tags."""
        self.send_json(200, {"models": [self.app.tags_entry(m) for m in self.app.store.list()]})

    def pull(self) -> None:
        """POST /api/pull."""
        req = self.body_json("api.PullRequest", NAME_FIELDS)
        raw = req.get("model") or req.get("name") or ""
        if ModelName.parse(raw) is None:
            raise ApiError(400, "invalid model name")
        events = self.app.pull(raw)
        if req.get("stream") is False:
            self.send_json(200, list(events)[-1], "application/json")
            return
        self.start_stream("application/x-ndjson")
        for event in events:
            self.write_chunk(go_json(event, newline=True))
        self.end_stream()

    def show(self) -> None:
        """POST /api/show."""
        req = self.body_json("api.ShowRequest", NAME_FIELDS)
        raw = req.get("model") or req.get("name")
        if not raw:
            raise ApiError(400, "model is required")
        self.send_json(200, self.app.show(self.app.find_model(raw, invalid_message="invalid model name")))

    def delete(self) -> None:
        """DELETE /api/delete: 200 with an empty body, or 404."""
        req = self.body_json("api.DeleteRequest", NAME_FIELDS)
        raw = req.get("model") or req.get("name") or ""
        model = self.app.find_model(raw, invalid_message=f'name "{raw}" is invalid')
        self.app.scheduler.unload(model)
        self.app.store.delete(model)
        self.send_body(200, b"", None)

    def ps(self) -> None:
        """GET /api/ps."""
        self.send_json(200, {"models": self.app.scheduler.running()})

    # -- inference -----------------------------------------------------------------------------

    def chat(self) -> None:
        """POST /api/chat."""
        req = self.body_json("api.ChatRequest", CHAT_FIELDS)
        self.run_chat(req, NativeChatWriter(self, req))

    def run_chat(self, req: dict[str, Any], writer: ChatWriter) -> None:
        """Shared by /api/chat and /v1/chat/completions: validate, load, generate, write."""
        keep_alive = keep_alive_seconds(req.get("keep_alive"))
        model = self.app.find_model(req.get("model"))
        messages = req.get("messages") or []
        if not messages and keep_alive == 0:
            self.app.scheduler.unload(model)
            writer.single(writer.base(content="", done_reason="unload"))
            return
        options = req.get("options") or {}
        load_ns, loaded = self.app.scheduler.acquire(model, keep_alive, options.get("num_ctx"))
        try:
            timing = Timing(time.perf_counter_ns() - load_ns, load_ns)
            if not messages:
                writer.single(writer.base(content="", done_reason="load"))
                return
            plan = chat_plan(model.name, messages, options)
            writer.generate(plan, timing)
        finally:
            self.app.scheduler.release(loaded)

    def generate(self) -> None:
        """POST /api/generate (prompt-based; same streaming style with "response")."""
        req = self.body_json("api.GenerateRequest", GENERATE_FIELDS)
        raw = req.get("model")
        keep_alive = keep_alive_seconds(req.get("keep_alive"))
        model = self.app.find_model(raw, invalid_status=404, invalid_message=f"model '{raw or ''}' not found")
        prompt = req.get("prompt") or ""
        created = {"model": raw, "created_at": rfc3339()}
        if not prompt and keep_alive == 0:
            self.app.scheduler.unload(model)
            self.send_json(200, {**created, "response": "", "done": True, "done_reason": "unload"})
            return
        options = req.get("options") or {}
        load_ns, loaded = self.app.scheduler.acquire(model, keep_alive, options.get("num_ctx"))
        try:
            if not prompt:
                self.send_json(200, {**created, "response": "", "done": True, "done_reason": "load"})
                return
            words = len(prompt.split()) + len((req.get("system") or "").split()) + 4
            plan = plan_reply(model.name, prompt, words, options.get("num_predict"))
            self._stream_generate(raw, plan, Timing(time.perf_counter_ns() - load_ns, load_ns), req)
        finally:
            self.app.scheduler.release(loaded)

    def _stream_generate(self, raw: str, plan: Plan, timing: Timing, req: dict[str, Any]) -> None:
        stream = req.get("stream") is not False
        if stream:
            self.start_stream("application/x-ndjson")

        def emit(token: str) -> None:
            if stream:
                chunk = {"model": raw, "created_at": rfc3339(), "response": token, "done": False}
                self.write_chunk(go_json(chunk, newline=True))

        emit_tokens(plan, timing, emit)
        final = {
            "model": raw,
            "created_at": rfc3339(),
            "response": "" if stream else "".join(plan.tokens),
            "done": True,
            "done_reason": plan.done_reason,
            "context": list(range(1, plan.prompt_eval_count + len(plan.tokens) + 1)),
            **timing.metrics(plan),
        }
        if stream:
            self.write_chunk(go_json(final, newline=True))
            self.end_stream()
        else:
            self.send_json(200, final)

    # -- OpenAI compatibility ------------------------------------------------------------------

    def v1_models(self) -> None:
        """GET /v1/models: ``data`` is null without models, as in v0.13.5."""
        data = [
            {
                "id": m.name.display(),
                "object": "model",
                "created": m.modified_ns // 10**9,
                "owned_by": m.name.namespace,
            }
            for m in self.app.store.list()
        ]
        self.send_json(200, {"object": "list", "data": data or None}, "application/json")

    def v1_retrieve(self) -> None:
        """GET /v1/models/<model>."""
        raw = unquote(urlsplit(self.path).path)[len("/v1/models/") :]
        try:
            model = self.app.find_model(raw, invalid_message="invalid model name")
        except ApiError as exc:
            self.send_openai_error(exc.status, exc.message, "api_error")
            return
        owned = ModelName.parse(raw)
        body = {
            "id": raw,
            "object": "model",
            "created": model.modified_ns // 10**9,
            "owned_by": owned.namespace if owned else "",
        }
        self.send_body(200, go_json(body, newline=True), "application/json")

    def send_openai_error(self, status: int, message: str, kind: str) -> None:
        """``{"error": {"message", "type", "param", "code"}}`` as openai.NewError builds it."""
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        self.send_body(status, go_json(body, newline=True), "application/json")

    def v1_chat(self) -> None:
        """POST /v1/chat/completions."""
        try:
            req = decode_body(self.read_body(), "openai.ChatCompletionRequest", OPENAI_CHAT_FIELDS)
        except (EOFError, BadRequest) as exc:
            self.send_openai_error(400, str(exc), "invalid_request_error")
            return
        if not req.get("messages"):
            self.send_openai_error(400, "[] is too short - 'messages'", "invalid_request_error")
            return
        options = {"num_predict": int(req["max_tokens"])} if req.get("max_tokens") is not None else {}
        chat_req = {"model": req.get("model") or "", "messages": req["messages"], "options": options}
        try:
            self.run_chat(chat_req, OpenAIChatWriter(self, req))
        except ApiError as exc:
            # ChatWriter.writeError turns every handler error into an api_error, keeping the status.
            self.send_openai_error(exc.status, exc.message, "api_error")


class ChatWriter:
    """How a chat's chunks reach the client (native NDJSON or OpenAI SSE)."""

    def __init__(self, handler: Handler, req: dict[str, Any]) -> None:
        self.handler = handler
        self.model = req.get("model") or ""
        self.stream = True

    def base(self, content: str, done_reason: str | None = None) -> dict[str, Any]:
        """A native ChatResponse without metrics."""
        out: dict[str, Any] = {
            "model": self.model,
            "created_at": rfc3339(),
            "message": {"role": "assistant", "content": content},
            "done": done_reason is not None,
        }
        if done_reason:
            out["done_reason"] = done_reason
        return out

    def single(self, response: dict[str, Any]) -> None:
        """Answer with one ChatResponse (load/unload)."""
        raise NotImplementedError

    def generate(self, plan: Plan, timing: Timing) -> None:
        """Stream or collect the plan's tokens and finish."""
        raise NotImplementedError


class NativeChatWriter(ChatWriter):
    """/api/chat: NDJSON chunks, or one object when stream is false."""

    def __init__(self, handler: Handler, req: dict[str, Any]) -> None:
        super().__init__(handler, req)
        self.stream = req.get("stream") is not False

    def single(self, response: dict[str, Any]) -> None:
        """Answer with one object."""
        self.handler.send_json(200, response)

    def generate(self, plan: Plan, timing: Timing) -> None:
        """Token chunks then the final chunk with done_reason and metrics."""
        if self.stream:
            self.handler.start_stream("application/x-ndjson")
        emit_tokens(plan, timing, self._emit)
        final = {
            **self.base("" if self.stream else "".join(plan.tokens), plan.done_reason),
            **timing.metrics(plan),
        }
        if self.stream:
            self.handler.write_chunk(go_json(final, newline=True))
            self.handler.end_stream()
        else:
            self.handler.send_json(200, final)

    def _emit(self, token: str) -> None:
        if self.stream:
            self.handler.write_chunk(go_json(self.base(token), newline=True))


class OpenAIChatWriter(ChatWriter):
    """/v1/chat/completions: SSE chunks ending with ``data: [DONE]``, or one chat.completion."""

    def __init__(self, handler: Handler, req: dict[str, Any]) -> None:
        super().__init__(handler, req)
        self.stream = req.get("stream") is True
        self.include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        self.id = f"chatcmpl-{random.randrange(999)}"

    def _chunk(self, content: str, finish_reason: str | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": "fp_ollama",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }
            ],
        }

    def _event(self, value: Any) -> None:
        payload = value if isinstance(value, bytes) else go_json(value)
        self.handler.write_chunk(b"data: " + payload + b"\n\n")

    def single(self, response: dict[str, Any]) -> None:
        """Load/unload replies, converted like any other response."""
        plan = Plan([], response.get("done_reason", "stop"), 0)
        self._finish(plan, {}, response["message"]["content"])

    def generate(self, plan: Plan, timing: Timing) -> None:
        """Token chunks, the finishing chunk, the usage chunk if asked, then [DONE]."""
        if self.stream:
            self.handler.start_stream("text/event-stream")
        emit_tokens(plan, timing, lambda token: self._event(self._chunk(token, None)) if self.stream else None)
        self._finish(plan, timing.metrics(plan), "".join(plan.tokens))

    def _finish(self, plan: Plan, metrics: dict[str, int], content: str) -> None:
        prompt, completion = metrics.get("prompt_eval_count", 0), metrics.get("eval_count", 0)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if not self.stream:
            body = {
                "id": self.id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "system_fingerprint": "fp_ollama",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": plan.done_reason,
                    }
                ],
                "usage": usage,
            }
            self.handler.send_body(200, go_json(body, newline=True), "application/json")
            return
        if not self.handler._streaming:
            self.handler.start_stream("text/event-stream")
        last = self._chunk("", plan.done_reason)
        self._event(last)
        if self.include_usage:
            self._event({**last, "choices": [], "usage": usage})
        self._event(b"[DONE]")
        self.handler.end_stream()


ROUTES: dict[str, dict[str, Route]] = {
    "/": {"GET": Handler.root, "HEAD": Handler.root},
    "/api/version": {"GET": Handler.version, "HEAD": Handler.version},
    "/api/tags": {"GET": Handler.tags, "HEAD": Handler.tags},
    "/api/pull": {"POST": Handler.pull},
    "/api/show": {"POST": Handler.show},
    "/api/delete": {"DELETE": Handler.delete},
    "/api/ps": {"GET": Handler.ps},
    "/api/chat": {"POST": Handler.chat},
    "/api/generate": {"POST": Handler.generate},
    "/v1/models": {"GET": Handler.v1_models},
    "/v1/chat/completions": {"POST": Handler.v1_chat},
}


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------

USAGE = """Large language model runner

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  list        List models
  help        Help about any command

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information

(This is a test double for Ollama: it implements only the commands above.)
"""


NO_SERVER = "could not connect to ollama server, run 'ollama serve' to start it"


def fail(message: str) -> int:
    """Print a cobra-style error and return exit status 1."""
    sys.stderr.write(f"Error: {message}\n")
    return 1


def serve() -> int:
    """``ollama serve``: run the API until SIGTERM or SIGINT."""
    settings = Settings.from_env()
    log("INFO", "routes.go:1554", "server config", env=settings.env_summary())
    try:
        registry = load_registry(settings.registry_path)
    except RegistryError as exc:
        return fail(str(exc))
    origin = str(settings.registry_path) if settings.registry_path else "built-in"
    log(
        "INFO",
        "ollama_double.py",
        "test double registry",
        path=origin,
        models=len(registry),
        test_double=DOUBLE_NAME,
    )
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = OllamaServer(App(settings, registry))
    except OSError as exc:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        return fail(f"listen tcp {host}:{settings.port}: bind: {reason}")
    address = server.server_address
    shown = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
    log(
        "INFO",
        "routes.go:1607",
        f"Listening on {shown}:{address[1]} (version {VERSION})",
        test_double=DOUBLE_NAME,
    )

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    log("INFO", "ollama_double.py", "server stopped", test_double=DOUBLE_NAME)
    return 0


def api_get(path: str, timeout: float = 5.0) -> Any:
    """GET a JSON document from the server OLLAMA_HOST names; OSError when it cannot be reached."""
    settings = Settings.from_env()
    connection = http.client.HTTPConnection(settings.client_host, settings.port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise OSError(f"{response.status}: {body.decode(errors='replace')}")
    return json.loads(body)


def version_command() -> int:
    """``ollama --version``, as versionHandler prints it."""
    try:
        server_version = str(api_get("/api/version").get("version", ""))
    except (OSError, ValueError):
        print("Warning: could not connect to a running Ollama instance")
        server_version = ""
    if server_version:
        print(f"ollama version is {server_version}")
    if server_version != VERSION:
        print(f"Warning: client version is {VERSION}")
    return 0


def list_command(args: list[str]) -> int:
    """``ollama list [prefix]``: the table ListHandler prints."""
    if len(args) > 1:
        return fail(f"accepts at most 1 arg(s), received {len(args)}")
    try:
        models = api_get("/api/tags")["models"]
    except (OSError, ValueError):
        return fail(f"ollama server not responding - {NO_SERVER}")
    now = time.time()
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for m in models:
        if not args or m["name"].lower().startswith(args[0].lower()):
            modified = _parse_rfc3339(m["modified_at"])
            rows.append([m["name"], m["digest"][:12], human_bytes(m["size"]), human_time(now - modified)])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("".join(cell.ljust(width) + "    " for cell, width in zip(row, widths, strict=True)))
    return 0


def _parse_rfc3339(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return time.time()


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``ollama <command>``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, rest = args[0], args[1:]
    if command in ("-v", "--version"):
        return version_command()
    if command == "serve":
        if rest and rest[0] in ("-h", "--help"):
            print("Start ollama\n\nUsage:\n  ollama serve [flags]\n\n(test double)")
            return 0
        return fail(f"accepts 0 arg(s), received {len(rest)}") if rest else serve()
    if command in ("list", "ls"):
        return list_command(rest)
    sys.stderr.write(f'Error: unknown command "{command}" for "ollama"\nRun \'ollama --help\' for usage.\n')
    return 1


if __name__ == "__main__":
    sys.exit(main())
