#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steady load through the gateway while something restarts: what was sent, served, lost.

Runs on a gateway's host (standard library only), reads the gateway and its master key from the host's
deployment record, and sends one fresh tiny completion at a fixed rate, plain and streamed in turn, to
that gateway's address only, until --seconds pass or --stop-file appears. Prints one line:

  LABEL: N sent, N ok, N failed, N via fallback, N retried, failed for S s; served by <deployment>: N, ...

(S: from the first failed request sent to the last, when any failed).

As a client of several gateways (--gateway, each a URL on the lab network; the same master key), a request
refused by one (connection refused or reset, or a status in --next-on, default 502,503) goes to the next at
once, as a load balancer would send it (each gateway asked first by turns); what each gateway refused with
is kept in the outcome. A restarting LiteLLM proxy refuses connections (measured: 233 refused and 2 reset
of 235 requests during one restart), so the default is what a balancer does. --next-on 429,500,502,503
also sends those statuses to the next one (nginx: proxy_next_upstream http_429 http_500 non_idempotent).
--retries N makes the client try again after --retry-wait seconds when every gateway refused, as the
OpenAI SDK's max_retries does. With --json, every request's outcome is written for a test to read.

    bench/on-lab-host.sh restart_loss.py --model fleet-cpp --rate 4 --seconds 120
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path

from lab_host import NO_CACHE, Endpoint, gateway, key_in

MAX_REQUESTS = 5000


# What a client (or load balancer) treats as "this gateway is not there": try another one.
REFUSED_STATUS = (502, 503)


def refused(error: Exception, statuses: tuple[int, ...] = REFUSED_STATUS) -> bool:
    if isinstance(error, urllib.error.HTTPError):
        return error.code in statuses
    return isinstance(error, (urllib.error.URLError, ConnectionError))


def refusal(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return str(error.code)
    reason = getattr(error, "reason", error)
    return type(reason).__name__


def one(
    endpoints: list[Endpoint], stream: bool, client: argparse.Namespace, outcomes: list, lock: threading.Lock
) -> None:
    outcome = {"stream": stream, "sent": time.time(), "attempts": 0, "refusals": []}
    error: Exception | None = None
    for round_ in range(client.retries + 1):
        if round_:
            time.sleep(client.retry_wait)
        for endpoint in endpoints:
            outcome["attempts"] += 1
            try:
                seconds, headers = endpoint.ask(stream=stream, timeout=60)
            except Exception as failed:  # every failure is an outcome to count, whatever it is
                error = failed
                if refused(failed, client.next_on):
                    outcome["refusals"].append(f"{endpoint.url}: {refusal(failed)}")
                    continue
                break
            outcome.update(
                ok=True,
                seconds=round(seconds, 4),
                gateway=endpoint.url,
                deployment=headers.get("x-litellm-model-id", ""),
                fallbacks=int(headers.get("x-litellm-attempted-fallbacks") or 0),
            )
            break
        if outcome.get("ok") or (error is not None and not refused(error, client.next_on)):
            break
    if not outcome.get("ok"):
        outcome.update(ok=False, error=f"{type(error).__name__}: {error}"[:300])
    with lock:
        outcomes.append(outcome)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the public name to ask the gateway for")
    parser.add_argument("--rate", type=float, default=4.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=120.0, help="the most the load lasts")
    parser.add_argument("--stop-file", type=Path, help="stop early once this file exists")
    parser.add_argument("--label", default="restart loss")
    parser.add_argument("--json", type=Path, help="write every outcome here")
    parser.add_argument(
        "--gateway", action="append", default=[], help="a gateway URL to use (repeat for several); default: this host's"
    )
    parser.add_argument("--retries", type=int, default=0, help="tries again when every gateway refused")
    parser.add_argument("--retry-wait", type=float, default=1.0, help="seconds before each try again")
    parser.add_argument(
        "--next-on",
        type=lambda text: tuple(int(code) for code in text.split(",")),
        default=REFUSED_STATUS,
        help="HTTP statuses that send the request to the next gateway (default 502,503)",
    )
    args = parser.parse_args()
    record = gateway()
    urls = args.gateway or [record["probe_url"]]
    endpoints = [Endpoint(url, args.model, key_in(record), NO_CACHE, record.get("ca_path")) for url in urls]
    outcomes: list[dict] = []
    lock = threading.Lock()
    threads = []
    started = time.monotonic()
    for index in range(min(MAX_REQUESTS, int(args.rate * args.seconds))):
        due = started + index / args.rate
        while (wait := due - time.monotonic()) > 0:
            time.sleep(min(0.05, wait))
        if args.stop_file and args.stop_file.exists():
            break
        # Round robin, as a balancer sends them: each gateway is asked first by turns (two at a time, so each
        # gets plain and streamed requests).
        first = index // 2 % len(endpoints)
        order = endpoints[first:] + endpoints[:first]
        thread = threading.Thread(target=one, args=(order, index % 2 == 1, args, outcomes, lock))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    ok = [outcome for outcome in outcomes if outcome["ok"]]
    served = Counter(outcome["deployment"] for outcome in ok)
    via_fallback = sum(1 for outcome in ok if outcome["fallbacks"])
    retried = sum(1 for outcome in outcomes if outcome["attempts"] > 1)
    failed_at = [outcome["sent"] for outcome in outcomes if not outcome["ok"]]
    window = f", failed for {max(failed_at) - min(failed_at):.1f} s" if failed_at else ""
    by = ", ".join(f"{name or 'unknown'}: {count}" for name, count in sorted(served.items()))
    print(
        f"{args.label}: {len(outcomes)} sent, {len(ok)} ok, {len(outcomes) - len(ok)} failed, "
        f"{via_fallback} via fallback, {retried} retried{window}; served by {by or 'none'}",
        flush=True,
    )
    if args.json:
        args.json.write_text(json.dumps({"outcomes": outcomes, "served": served}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
