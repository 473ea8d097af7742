#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Steady load through the gateway while something restarts: what was sent, served, lost.

Runs on the gateway's host (standard library only), reads the gateway and its master key from the host's
deployment record, and sends one fresh tiny completion at a fixed rate, plain and streamed in turn, to
loopback only, until --seconds pass or --stop-file appears. Prints one line:

  LABEL: N sent, N ok, N failed, N via fallback; served by <deployment>: N, ...

and, with --json, writes every request's outcome for a test to read.

    bench/on-lab-host.sh restart_loss.py --model fleet-cpp --rate 4 --seconds 120
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from lab_host import NO_CACHE, Endpoint, gateway, key_in

MAX_REQUESTS = 5000


def one(endpoint: Endpoint, stream: bool, outcomes: list, lock: threading.Lock) -> None:
    outcome = {"stream": stream, "sent": time.time()}
    try:
        seconds, headers = endpoint.ask(stream=stream, timeout=60)
        outcome.update(
            ok=True,
            seconds=round(seconds, 4),
            deployment=headers.get("x-litellm-model-id", ""),
            fallbacks=int(headers.get("x-litellm-attempted-fallbacks") or 0),
        )
    except Exception as error:  # every failure is an outcome to count, whatever it is
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
    args = parser.parse_args()
    record = gateway()
    endpoint = Endpoint(record["probe_url"], args.model, key_in(record), NO_CACHE)
    outcomes: list[dict] = []
    lock = threading.Lock()
    threads = []
    started = time.monotonic()
    for index in range(min(MAX_REQUESTS, int(args.rate * args.seconds))):
        due = started + index / args.rate
        while time.monotonic() < due:
            time.sleep(min(0.05, due - time.monotonic()))
        if args.stop_file and args.stop_file.exists():
            break
        thread = threading.Thread(target=one, args=(endpoint, index % 2 == 1, outcomes, lock))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    ok = [outcome for outcome in outcomes if outcome["ok"]]
    served = Counter(outcome["deployment"] for outcome in ok)
    via_fallback = sum(1 for outcome in ok if outcome["fallbacks"])
    by = ", ".join(f"{name or 'unknown'}: {count}" for name, count in sorted(served.items()))
    print(
        f"{args.label}: {len(outcomes)} sent, {len(ok)} ok, {len(outcomes) - len(ok)} failed, "
        f"{via_fallback} via fallback; served by {by or 'none'}",
        flush=True,
    )
    if args.json:
        args.json.write_text(json.dumps({"outcomes": outcomes, "served": served}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
