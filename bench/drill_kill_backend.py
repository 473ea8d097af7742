#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drill: a backend killed (SIGKILL, not a clean stop) under steady traffic through the gateway.

Runs on a gateway's host as the service account (standard library only). Sends one fresh tiny completion
at a fixed rate to the gateway for MODEL, plain and streamed in turn; after --warmup seconds it kills
every process of MODEL's own user unit with SIGKILL, and keeps the load on until MODEL's own deployment
has served a request again (or --seconds pass). Prints one line:

  kill-primary MODEL: N sent, N ok, N via fallback, N lost; systemd restarted UNIT (N times);
  served by its own server again S s after the kill

and exits 1 when a request was lost, none went through the fallback chain, systemd did not restart the
unit, or MODEL's own server never served again.

    bench/on-lab-host.sh drill_kill_backend.py --model lab-ollama
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from lab_host import NO_CACHE, Endpoint, gateway, key_in, services
from restart_loss import REFUSED_STATUS, one


def user_systemctl(*args: str) -> str:
    runtime = f"/run/user/{os.getuid()}"
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={runtime}/bus"}
    return subprocess.run(
        ["systemctl", "--user", *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def restarts(unit: str) -> int:
    return int(user_systemctl("show", "--property=NRestarts", "--value", unit) or 0)


def unit_of(model: str) -> str:
    for record in services():
        if model in record.get("models", []) and record["backend"] != "litellm":
            return record["unit"]
    raise SystemExit(f"no backend on this host serves {model}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the public name whose own server is killed")
    parser.add_argument("--rate", type=float, default=4.0, help="requests a second")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the kill")
    parser.add_argument("--seconds", type=float, default=90.0, help="the most the load lasts")
    parser.add_argument("--json", type=Path, help="write every outcome here")
    args = parser.parse_args()
    unit = unit_of(args.model)
    record = gateway()
    endpoint = Endpoint(record["probe_url"], args.model, key_in(record), NO_CACHE, record.get("ca_path"))
    # One gateway, no retries: a request the gateway fails is lost.
    client = argparse.Namespace(retries=0, retry_wait=0.0, next_on=REFUSED_STATUS)
    own = f"{args.model}@"
    outcomes: list[dict] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []
    restarts_before = restarts(unit)
    killed_at: float | None = None
    back_at: float | None = None
    started = time.monotonic()
    for index in range(int(args.rate * args.seconds)):
        due = started + index / args.rate
        while (wait := due - time.monotonic()) > 0:
            time.sleep(min(0.05, wait))
        if killed_at is None and time.monotonic() - started >= args.warmup:
            user_systemctl("kill", "--signal=SIGKILL", "--kill-whom=all", unit)
            killed_at = time.time()
        if killed_at is not None:
            with lock:
                served_again = [
                    outcome["sent"]
                    for outcome in outcomes
                    if outcome["ok"] and outcome["sent"] > killed_at and outcome["deployment"].startswith(own)
                ]
            if served_again:
                back_at = min(served_again)
                break
        thread = threading.Thread(target=one, args=([endpoint], index % 2 == 1, client, outcomes, lock))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    restarted = restarts(unit) - restarts_before
    ok = [outcome for outcome in outcomes if outcome["ok"]]
    via_fallback = sum(1 for outcome in ok if outcome["fallbacks"] or not outcome["deployment"].startswith(own))
    lost = len(outcomes) - len(ok)
    back = (
        f"served by its own server again {back_at - killed_at:.1f} s after the kill"
        if back_at
        else "never served by its own server again"
    )
    print(
        f"kill-primary {args.model}: {len(outcomes)} sent, {len(ok)} ok, {via_fallback} via fallback, {lost} lost; "
        f"systemd restarted {unit} ({restarted} times); {back}",
        flush=True,
    )
    if args.json:
        args.json.write_text(json.dumps({"outcomes": outcomes, "killed_at": killed_at, "back_at": back_at}, indent=1))
    return 0 if lost == 0 and via_fallback > 0 and restarted > 0 and back_at else 1


if __name__ == "__main__":
    sys.exit(main())
