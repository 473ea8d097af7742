#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drill: Redis, the gateway's response cache, stopped under steady traffic through the gateway.

Runs as root on the host of a gateway and its Redis (standard library only): Redis is the system unit
redis-server.service, which the service account may not stop. It reads that account's deployment record and
the gateway's master key (--account). Sends tiny completions at a fixed rate to the gateway for MODEL, the
cache left on: every --probe-every'th request asks one fixed probe question (the same for the whole run), the
others a fresh one, plain and streamed in turn. After --warmup seconds it asks the gateway's GET /cache/ping,
stops Redis, asks /cache/ping again halfway through --down seconds, starts Redis, asks once more, and keeps the
load on until a probe is answered from the cache (the x-litellm-cache-key header, which LiteLLM sets on cache
hits only) or --recover seconds pass. Prints one line:

  redis-down MODEL: N sent, N ok, N lost; cache used before the stop: yes; N probes while down, N from the
  cache; /cache/ping before: healthy, while down: 503 Service Unhealthy, after: healthy;
  cache hit again S s after Redis came back

and exits 1 when a request was lost, the cache served no probe before the stop (while Redis is down, LiteLLM's
in-memory layer of the cache may still answer a probe: that is counted, not failed),
/cache/ping did not say healthy before the stop and 503 while Redis was down, or no probe came from the cache
within --recover seconds of Redis coming back. Redis is started again whatever happens.

LiteLLM 1.108.7 fences Redis with a circuit breaker per worker (caching/redis_cache.py): after 5 failed
calls it skips Redis for REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT seconds from the last failure (LiteLLM's
default 60; the litellm role sets litellm_cache_redis_retry_after, 10), so the cache comes back up to that
long after Redis does, while /cache/ping (never fenced) already says healthy.

    LAB_SERVICE_ACCOUNT=root bench/on-lab-host.sh drill_redis_down.py --model lab-cpp
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import lab_host
from lab_host import Endpoint, gateway, key_in
from restart_loss import MAX_REQUESTS, REFUSED_STATUS, one

# The header LiteLLM's proxy sets only on a response it took from the cache (its hidden param cache_key).
CACHE_HIT_HEADER = "x-litellm-cache-key"


def as_account(name: str) -> None:
    """Read the deployment record and env files of the service account NAME, not those of root."""
    home = Path(pwd.getpwnam(name).pw_dir)
    lab_host.STATE = home / lab_host.STATE.relative_to(Path.home())
    lab_host.ENV_DIR = home / lab_host.ENV_DIR.relative_to(Path.home())


def systemctl(*args: str, check: bool = True) -> str:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=check).stdout.strip()


def said(body: bytes) -> str:
    """The message of a LiteLLM error answer, without the cache settings /cache/ping puts beside it."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "an answer that is no LiteLLM error"
    try:
        # /cache/ping's message is itself JSON: {"message": "Service Unhealthy", "litellm_cache_params": ...}.
        return str(json.loads(message)["message"])
    except (ValueError, KeyError, TypeError):
        return str(message)[:120]


def cache_ping(endpoint: Endpoint) -> str:
    """What the gateway's GET /cache/ping says of its cache: its status ('healthy'), or the HTTP status and
    LiteLLM's message (503 'Service Unhealthy' when its ping of Redis failed)."""
    request = urllib.request.Request(f"{endpoint.url}/cache/ping", headers=endpoint.auth)
    try:
        with urllib.request.urlopen(request, timeout=30, context=endpoint.context) as response:
            return str(json.load(response).get("status"))
    except urllib.error.HTTPError as error:
        return f"{error.code} {said(error.read())}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"no answer ({type(getattr(error, 'reason', error)).__name__})"


def probe(endpoint: Endpoint, outcomes: list, lock: threading.Lock) -> None:
    """Ask the probe question once; note whether the answer came from the cache."""
    outcome: dict = {"probe": True, "stream": False, "sent": time.time()}
    try:
        seconds, headers = endpoint.ask(timeout=60)
    except Exception as failed:  # every failure is an outcome to count, whatever it is
        outcome.update(ok=False, error=f"{type(failed).__name__}: {failed}"[:300])
    else:
        outcome.update(
            ok=True,
            seconds=round(seconds, 4),
            cached=bool(headers.get(CACHE_HIT_HEADER)),
            deployment=headers.get("x-litellm-model-id", ""),
        )
    with lock:
        outcomes.append(outcome)


class Drill:
    """The load, the Redis stop and start, and what the gateway answered meanwhile."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        record = gateway()
        key, ca_file = key_in(record), record.get("ca_path")
        # Cache left on: no "cache" field. Endpoint.ask puts a fresh nonce in its question; the probe's
        # extra fields replace that question with one fixed for this run.
        self.fresh = Endpoint(record["probe_url"], args.model, key, None, ca_file)
        question = {"role": "user", "content": f"Redis-down probe {time.time_ns()}: say one word."}
        self.probe = Endpoint(record["probe_url"], args.model, key, {"messages": [question]}, ca_file)
        # One gateway, no retries: a request the gateway fails is lost.
        self.client = argparse.Namespace(retries=0, retry_wait=0.0, next_on=REFUSED_STATUS)
        self.outcomes: list[dict] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.pings: dict[str, str] = {}
        self.stopped_at: float | None = None
        self.back_at: float | None = None
        self.hit_at: float | None = None

    def run(self) -> None:
        args = self.args
        started = time.monotonic()
        try:
            for index in range(MAX_REQUESTS):
                due = started + index / args.rate
                while (wait := due - time.monotonic()) > 0:
                    time.sleep(min(0.05, wait))
                self.step(time.monotonic() - started)
                if self.back_at is not None:
                    self.hit_at = self.hit_again()
                    if self.hit_at or time.time() - self.back_at > args.recover:
                        break
                self.send(index)
        finally:
            if self.back_at is None:
                systemctl("start", args.unit)
                self.back_at = time.time()
            for thread in self.threads:
                thread.join()
        # A probe sent earlier may have come back from the cache after the loop stopped looking.
        self.hit_at = self.hit_again()

    def step(self, elapsed: float) -> None:
        """Stop Redis after the warmup, ask /cache/ping halfway through the outage, start Redis after it."""
        args = self.args
        if self.stopped_at is None and elapsed >= args.warmup:
            self.pings["before"] = cache_ping(self.fresh)
            systemctl("stop", args.unit)
            self.stopped_at = time.time()
        elif self.stopped_at and "while down" not in self.pings and elapsed >= args.warmup + args.down / 2:
            self.pings["while down"] = cache_ping(self.fresh)
        elif self.back_at is None and self.stopped_at and elapsed >= args.warmup + args.down:
            systemctl("start", args.unit)
            self.back_at = time.time()
            self.pings["after"] = cache_ping(self.fresh)

    def send(self, index: int) -> None:
        if index % self.args.probe_every == 0:
            thread = threading.Thread(target=probe, args=(self.probe, self.outcomes, self.lock))
        else:
            stream = index // self.args.probe_every % 2 == 1
            thread = threading.Thread(target=one, args=([self.fresh], stream, self.client, self.outcomes, self.lock))
        thread.start()
        self.threads.append(thread)

    def hit_again(self) -> float | None:
        """When the first probe sent after Redis came back was sent, of those answered from the cache."""
        with self.lock:
            hits = [o["sent"] for o in self.outcomes if o.get("cached") and o["sent"] > (self.back_at or 0)]
        return min(hits) if hits else None

    def report(self) -> bool:
        """Print the drill's line; whether every promise held."""
        stopped, back = self.stopped_at or 0, self.back_at or 0
        outcomes = self.outcomes
        lost = sum(1 for o in outcomes if not o["ok"])
        used_before = any(o.get("cached") for o in outcomes if o["sent"] < stopped)
        while_down = [o for o in outcomes if o.get("probe") and stopped < o["sent"] < back]
        cached_down = sum(1 for o in while_down if o.get("cached"))
        pings = {when: self.pings.get(when, "not asked") for when in ("before", "while down", "after")}
        again = (
            f"cache hit again {self.hit_at - back:.1f} s after Redis came back"
            if self.hit_at
            else f"no cache hit within {self.args.recover:g} s after Redis came back"
        )
        print(
            f"redis-down {self.args.model}: {len(outcomes)} sent, {len(outcomes) - lost} ok, {lost} lost; "
            f"cache used before the stop: {'yes' if used_before else 'no'}; "
            f"{len(while_down)} probes while down, {cached_down} from the cache (the workers' in-memory layer); "
            f"/cache/ping {', '.join(f'{when}: {answer}' for when, answer in pings.items())}; {again}",
            flush=True,
        )
        return (
            lost == 0
            and used_before
            and bool(while_down)
            and pings["before"] == "healthy"
            and pings["while down"].startswith("503 ")
            and self.hit_at is not None
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lab-cpp", help="the public name to ask the gateway for")
    parser.add_argument("--account", default="llm-stack", help="the service account whose deployment this is")
    parser.add_argument("--unit", default="redis-server.service", help="Redis's system unit")
    parser.add_argument("--rate", type=float, default=2.0, help="requests a second")
    parser.add_argument("--probe-every", type=int, default=2, help="every Nth request asks the probe question")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before Redis is stopped")
    parser.add_argument("--down", type=float, default=15.0, help="seconds Redis stays stopped under load")
    parser.add_argument(
        "--recover", type=float, default=90.0, help="the most seconds after Redis is back for a cache hit"
    )
    parser.add_argument("--json", type=Path, help="write every outcome here")
    args = parser.parse_args()
    if args.probe_every < 1 or args.rate <= 0:
        parser.error("--probe-every must be 1 or more and --rate above 0")
    if os.geteuid() != 0:
        raise SystemExit(f"run this as root: {args.unit} is a system unit, the service account may not stop it")
    if systemctl("is-active", args.unit, check=False) != "active":
        raise SystemExit(f"{args.unit} is not active on this host: run the drill on the host of the plan's Redis")
    as_account(args.account)
    drill = Drill(args)
    drill.run()
    held = drill.report()
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "outcomes": drill.outcomes,
                    "stopped_at": drill.stopped_at,
                    "back_at": drill.back_at,
                    "hit_at": drill.hit_at,
                    "pings": drill.pings,
                },
                indent=1,
            )
        )
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
