# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the bench/ scripts share on a host of the deployment (standard library only): the host's deployment
record, the keys in the env files beside it, and one chat completion, plain or streamed, timed."""

from __future__ import annotations

import itertools
import json
import ssl
import threading
import time
import urllib.request
from pathlib import Path

STATE = Path.home() / ".local/state/llm-stack/deployment.json"
ENV_DIR = Path.home() / ".config/llm-stack"
KEY_NAMES = ("LITELLM_MASTER_KEY", "VLLM_API_KEY", "LLAMA_API_KEY", "API_KEY")
NO_CACHE = {"cache": {"no-cache": True, "no-store": True}}
_counter = itertools.count()
_lock = threading.Lock()


def services() -> list[dict]:
    """The service records of this host, as phase 2 recorded them."""
    return json.loads(STATE.read_text())["services"]


def gateway() -> dict:
    return next(record for record in services() if record["backend"] == "litellm")


def key_in(record: dict) -> str | None:
    """The API key a server's env file gives it (the gateway's master key, a backend's key), if any."""
    for line in (ENV_DIR / record["env_file"]).read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() in KEY_NAMES and value.strip():
            return value.strip()
    return None


class Endpoint:
    """One way to a model: a server's base URL, the name it is asked by, its key, extra body fields."""

    def __init__(
        self, url: str, model: str, key: str | None, extra: dict | None = None, ca_file: str | None = None
    ) -> None:
        self.url, self.model, self.extra = url.rstrip("/"), model, extra or {}
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}
        # A gateway serving HTTPS (its record's ca_path: the CA that signed it; empty: the host's CA store).
        self.context = ssl.create_default_context(cafile=ca_file or None) if self.url.startswith("https:") else None

    def ask(self, stream: bool = False, timeout: float = 120) -> tuple[float, dict]:
        """Seconds one fresh tiny completion took, and the response headers; raises on any failure."""
        with _lock:
            nonce = next(_counter)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": f"Say one word ({nonce}-{time.monotonic_ns()})."}],
            "max_tokens": 1,
            "temperature": 0,
            "stream": stream,
            **self.extra,
        }
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.auth},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=timeout, context=self.context) as response:
            if stream:
                lines = [line.strip() for line in response if line.strip()]
                if b"data: [DONE]" not in lines:
                    raise ValueError(f"the stream ended without data: [DONE]; its last lines: {lines[-2:]}")
            else:
                json.load(response)
            headers = {name.lower(): value for name, value in response.headers.items()}
        return time.perf_counter() - started, headers
