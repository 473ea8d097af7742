#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gateway overhead: the same tiny completion sent straight to a backend and through the LiteLLM gateway.

Runs on a host of the deployment (standard library only), as the service account, and reads what to measure
from the host's deployment record (~/.local/state/llm-stack/deployment.json) and the env files beside it: no
address, port or key is typed in. Requests go to loopback only. Prints one line per figure:

  latency: interleaved single requests, p50 and p95 of each path and their difference;
  concurrency C: requests/s and p95 of each path with C requests in flight, and the gateway's share.

Every prompt is new and the gateway is asked to skip its cache, so each request reaches the backend.

    bench/on-lab-host.sh gateway_overhead.py [--backend KEY] [--requests 200] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STATE = Path.home() / ".local/state/llm-stack/deployment.json"
ENV_DIR = Path.home() / ".config/llm-stack"
_counter = itertools.count()
_lock = threading.Lock()


def env_file(name: str) -> dict[str, str]:
    values = {}
    for line in (ENV_DIR / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def key_in(record: dict) -> str | None:
    """The API key a server's env file gives it (the gateway's master key, a backend's key), if any."""
    values = env_file(record["env_file"])
    for name in ("LITELLM_MASTER_KEY", "VLLM_API_KEY", "LLAMA_API_KEY", "API_KEY"):
        if values.get(name):
            return values[name]
    return None


class Path_:
    """One way to the model: a base URL, the model name it is asked by, its key, extra body fields."""

    def __init__(self, label: str, url: str, model: str, key: str | None, extra: dict) -> None:
        self.label, self.url, self.model, self.extra = label, url.rstrip("/"), model, extra
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}

    def ask(self) -> float:
        with _lock:
            nonce = next(_counter)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": f"Say one word ({nonce}-{time.monotonic_ns()})."}],
            "max_tokens": 1,
            "temperature": 0,
            **self.extra,
        }
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self.auth},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            json.load(response)
        return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def latency(direct: Path_, gateway: Path_, count: int) -> None:
    times: dict[str, list[float]] = {direct.label: [], gateway.label: []}
    for _ in range(count):
        for path in (direct, gateway):
            times[path.label].append(path.ask())
    d, g = times[direct.label], times[gateway.label]
    print(
        f"latency ({count} interleaved pairs): direct p50 {ms(statistics.median(d))} p95 {ms(percentile(d, 0.95))}; "
        f"gateway p50 {ms(statistics.median(g))} p95 {ms(percentile(g, 0.95))}; "
        f"added p50 {ms(statistics.median(g) - statistics.median(d))} "
        f"p95 {ms(percentile(g, 0.95) - percentile(d, 0.95))}"
    )


def load(path: Path_, concurrency: int, count: int) -> tuple[float, float, int]:
    """(requests/s, p95 seconds, failures) of count requests with concurrency in flight."""
    failures = 0

    def one(_: int) -> float | None:
        nonlocal failures
        try:
            return path.ask()
        except (urllib.error.URLError, OSError, ValueError):
            with _lock:
                failures += 1
            return None

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        times = [t for t in pool.map(one, range(count)) if t is not None]
    elapsed = time.perf_counter() - started
    return len(times) / elapsed, percentile(times, 0.95) if times else float("nan"), failures


def throughput(direct: Path_, gateway: Path_, concurrency: int, count: int) -> None:
    # Each path twice, alternating, so a noisy moment does not land on one side only.
    runs = {direct.label: [], gateway.label: []}
    for path in (direct, gateway, direct, gateway):
        runs[path.label].append(load(path, concurrency, count // 2))
    (d_rate, d_p95, d_fail), (g_rate, g_p95, g_fail) = (
        (sum(r[0] for r in runs[label]) / 2, max(r[1] for r in runs[label]), sum(r[2] for r in runs[label]))
        for label in (direct.label, gateway.label)
    )
    print(
        f"concurrency {concurrency} ({count} requests a path): direct {d_rate:.1f} req/s p95 {ms(d_p95)}; "
        f"gateway {g_rate:.1f} req/s p95 {ms(g_p95)}; gateway/direct throughput {g_rate / d_rate:.2f}; "
        f"failed {d_fail} direct, {g_fail} gateway"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", help="the backend service's key in the deployment record (default: the first)")
    parser.add_argument("--requests", type=int, default=100, help="interleaved pairs for the latency figure")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels for the load figures")
    parser.add_argument("--load-requests", type=int, default=160, help="requests a path at each level")
    args = parser.parse_args()

    services = json.loads(STATE.read_text())["services"]
    gateway_record = next(s for s in services if s["backend"] == "litellm")
    backends = [s for s in services if s["backend"] != "litellm"]
    backend = next((s for s in backends if s["key"] == args.backend), None) if args.backend else backends[0]
    if backend is None:
        print(f"no backend '{args.backend}' here; choose one of {', '.join(s['key'] for s in backends)}")
        return 2
    direct = Path_("direct", backend["probe_url"], backend["chat_model"], key_in(backend), {})
    no_cache = {"cache": {"no-cache": True}}
    gateway = Path_("gateway", gateway_record["probe_url"], backend["models"][0], key_in(gateway_record), no_cache)
    print(f"backend {backend['key']} ({backend['backend']}) at {backend['probe_url']}; gateway at {gateway.url}")
    for path in (direct, gateway):  # warm both paths up
        for _ in range(3):
            path.ask()
    latency(direct, gateway, args.requests)
    for level in (int(value) for value in args.concurrency.split(",")):
        throughput(direct, gateway, level, args.load_requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
