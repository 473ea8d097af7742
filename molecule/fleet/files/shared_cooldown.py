#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a second gateway see the first one's cooldown? (run on a gateway host, with one node's server down)

Asks the first gateway until a request had to be retried (it tried the stopped deployment, failed, and
cooled it down), waits --settle seconds (a gateway reads cooldowns it does not hold from Redis at most once
a second: LiteLLM's DEFAULT_COOLDOWN_REDIS_READ_INTERVAL_SECONDS), then asks the second gateway --count times
well within the cooldown, and prints JSON: what each request to
the second gateway was served by and how many retries it took. A second gateway that reads the cooldown
from the shared Redis never tries the stopped deployment: every request is served by the other node with
0 retries. One that keeps its own cooldowns picks the stopped one half of the time until it fails itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from lab_host import NO_CACHE, Endpoint, gateway, key_in


def routing(endpoint: Endpoint) -> dict:
    _, headers = endpoint.ask(timeout=30)
    return {
        "deployment": headers.get("x-litellm-model-id", ""),
        "retries": int(headers.get("x-litellm-attempted-retries") or 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--first", required=True, help="the first gateway's URL")
    parser.add_argument("--second", required=True, help="the second gateway's URL")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--settle", type=float, default=1.5)
    args = parser.parse_args()
    key = key_in(gateway())
    first = Endpoint(args.first, args.model, key, NO_CACHE)
    second = Endpoint(args.second, args.model, key, NO_CACHE)
    before = []
    while len(before) < 20 and not any(answer["retries"] for answer in before):
        before.append(routing(first))
    time.sleep(args.settle)
    after = [routing(second) for _ in range(args.count)]
    print(json.dumps({"first": before, "second": after}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
