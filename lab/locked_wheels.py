#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's wheelhouse comes from the collection's locks, so the lab hosts install them in hash-checking mode
as an air-gapped host would.

  locked_wheels.py for-host LOCK [--except NAME ...]
      The lock's entries whose markers hold on the lab hosts (CPython of Debian 12, Linux x86-64), markers
      taken off, for `pip download --require-hashes --no-deps` on this controller (whose Python evaluates
      markers for itself: Debian 12's 3.11.2 needs async-timeout, a newer 3.11 does not).
  locked_wheels.py add-hash LOCK NAME SHA256
      The lock with one more hash for NAME: the lab's own build of a package the lock has as an sdist.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.markers import Marker

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / ".collections"))

from ansible_collections.labai.llm_stack.plugins.plugin_utils import _requirements_lock as locks  # noqa: E402

# Debian 12's Python, as the lab images run it.
LAB_HOST = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def for_host(text: str, left_out: set[str]) -> str:
    lines = []
    for entry in locks.parse(text).entries:
        if entry.name in left_out or (entry.marker and not Marker(entry.marker).evaluate(LAB_HOST)):
            continue
        lines.append(f"{entry.name}=={entry.version} " + " ".join(entry.hashes))
    return "".join(f"{line}\n" for line in lines)


def add_hash(text: str, name: str, digest: str) -> str:
    wanted, out, added, pending = locks.canonical(name), [], False, False
    for line in text.splitlines():
        out.append(line)
        pin = locks.PIN.match(line.rstrip(" \\"))
        if pin and locks.canonical(pin.group("name")) == wanted and line.endswith("\\"):
            pending = True
        elif pending and not line.rstrip().endswith("\\"):
            # The entry's last hash: the lab's goes after it.
            out[-1] = f"{line} \\"
            out.append(f"    --hash=sha256:{digest}")
            pending, added = False, True
    if not added:
        raise SystemExit(f"{name} is not in the lock")
    return "".join(f"{line}\n" for line in out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    host = commands.add_parser("for-host")
    host.add_argument("lock", type=Path)
    host.add_argument("--except", dest="left_out", action="append", default=[])
    extra = commands.add_parser("add-hash")
    extra.add_argument("lock", type=Path)
    extra.add_argument("name")
    extra.add_argument("sha256")
    args = parser.parse_args()
    text = args.lock.read_text()
    if args.command == "for-host":
        sys.stdout.write(for_host(text, {locks.canonical(name) for name in args.left_out}))
    else:
        sys.stdout.write(add_hash(text, args.name, args.sha256))
    return 0


if __name__ == "__main__":
    sys.exit(main())
