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
import statistics
import sys
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor

from lab_host import NO_CACHE, Endpoint, gateway, key_in, services


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def latency(direct: Endpoint, through: Endpoint, count: int) -> None:
    d, g = [], []
    for _ in range(count):
        d.append(direct.ask()[0])
        g.append(through.ask()[0])
    print(
        f"latency ({count} interleaved pairs): direct p50 {ms(statistics.median(d))} p95 {ms(percentile(d, 0.95))}; "
        f"gateway p50 {ms(statistics.median(g))} p95 {ms(percentile(g, 0.95))}; "
        f"added p50 {ms(statistics.median(g) - statistics.median(d))} "
        f"p95 {ms(percentile(g, 0.95) - percentile(d, 0.95))}"
    )


def load(path: Endpoint, concurrency: int, count: int) -> tuple[float, float, int]:
    """(requests/s, p95 seconds, failures) of count requests with concurrency in flight."""
    failures = 0
    lock = threading.Lock()

    def one(_: int) -> float | None:
        nonlocal failures
        try:
            return path.ask()[0]
        except (urllib.error.URLError, OSError, ValueError):
            with lock:
                failures += 1
            return None

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        times = [t for t in pool.map(one, range(count)) if t is not None]
    elapsed = time.perf_counter() - started
    return len(times) / elapsed, percentile(times, 0.95) if times else float("nan"), failures


def throughput(direct: Endpoint, through: Endpoint, concurrency: int, count: int) -> None:
    # Each path twice, alternating, so a noisy moment does not land on one side only.
    runs: dict[int, list] = {0: [], 1: []}
    for side, path in ((0, direct), (1, through), (0, direct), (1, through)):
        runs[side].append(load(path, concurrency, count // 2))
    (d_rate, d_p95, d_fail), (g_rate, g_p95, g_fail) = (
        (sum(r[0] for r in runs[side]) / 2, max(r[1] for r in runs[side]), sum(r[2] for r in runs[side]))
        for side in (0, 1)
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

    records = services()
    gateway_record = gateway()
    backends = [s for s in records if s["backend"] != "litellm"]
    backend = next((s for s in backends if s["key"] == args.backend), None) if args.backend else backends[0]
    if backend is None:
        print(f"no backend '{args.backend}' here; choose one of {', '.join(s['key'] for s in backends)}")
        return 2
    direct = Endpoint(backend["probe_url"], backend["chat_model"], key_in(backend))
    through = Endpoint(
        gateway_record["probe_url"],
        backend["models"][0],
        key_in(gateway_record),
        NO_CACHE,
        gateway_record.get("ca_path"),
    )
    print(f"backend {backend['key']} ({backend['backend']}) at {backend['probe_url']}; gateway at {through.url}")
    for path in (direct, through):  # warm both paths up
        for _ in range(3):
            path.ask()
    latency(direct, through, args.requests)
    for level in (int(value) for value in args.concurrency.split(",")):
        throughput(direct, through, level, args.load_requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
