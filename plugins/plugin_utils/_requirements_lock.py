# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash-locked requirements files (pip's hash-checking mode, as `uv pip compile --generate-hashes` writes
them): reading one, checking it against the pins a role installs, and taking out the entries of some packages.

A lock pins every package with `==` and at least one `--hash=sha256:...`; pip then installs nothing that is not
in it and no file whose hash differs. Index options have no place in it: an `--index-url` there could carry
credentials or send pip to another index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

PIN = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*(?P<version>[^\s;]+)\s*(?:;(?P<marker>.*))?$"
)
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}$")
PYTHON_VERSION = re.compile(r"--python-version[ =](\d+\.\d+)")
REGENERATE = "generate the lock again (uv pip compile --generate-hashes: its header has the command)"


def canonical(name: str) -> str:
    """The package name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Entry:
    name: str
    version: str
    marker: str
    hashes: list[str]
    text: str


@dataclass
class Lock:
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # The Python version the lock was generated for (uv's --python-version without --universal); '' for any.
    python: str = ""

    def versions(self, name: str) -> set[str]:
        return {entry.version for entry in self.entries if entry.name == canonical(name)}


def _logical_lines(text: str) -> Iterable[tuple[int, str, str]]:
    """(first line number, the line with its continuations joined, the original text) per requirement."""
    joined, original, start = "", [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not original:
            start = number
        original.append(line)
        stripped = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if stripped.endswith("\\"):
            joined += stripped[:-1] + " "
            continue
        joined += stripped
        yield start, joined.strip(), "\n".join(original)
        joined, original = "", []
    if original:
        yield start, joined.strip(), "\n".join(original)


def parse(text: str) -> Lock:
    lock = Lock()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    found = PYTHON_VERSION.search(header)
    if found and "--universal" not in header:
        lock.python = found.group(1)
    for number, line, original in _logical_lines(text):
        if not line:
            continue
        words = line.split()
        hashes = [word for word in words if word.startswith("--hash")]
        requirement = " ".join(word for word in words if not word.startswith("--hash"))
        if requirement.startswith("-"):
            lock.problems.append(
                f"line {number}: {requirement.split()[0]} has no place in a lock (index settings belong in "
                "<role>_pip_options, never in a file that pins hashes); take it out"
            )
            continue
        pin = PIN.match(requirement)
        if pin is None:
            lock.problems.append(f"line {number}: {requirement!r} is not pinned with '=='; {REGENERATE}")
            continue
        bad = [word for word in hashes if not HASH.match(word)]
        if not hashes or bad:
            what = "has no --hash" if not hashes else f"has a hash pip does not take ({bad[0]})"
            lock.problems.append(f"line {number}: {pin.group('name')} {what}; {REGENERATE} with --generate-hashes")
            continue
        lock.entries.append(
            Entry(
                canonical(pin.group("name")),
                pin.group("version"),
                (pin.group("marker") or "").strip(),
                hashes,
                original.rstrip(),
            )
        )
    if not lock.entries and not lock.problems:
        lock.problems.append(f"it pins no package; {REGENERATE}")
    return lock


def pin_problems(lock: Lock, pins: Iterable[str]) -> list[str]:
    """What the lock lacks of the role's pins (`name[extras]==version`, as the role installs them)."""
    problems = list(lock.problems)
    for pin in pins:
        wanted = PIN.match(str(pin).strip())
        if wanted is None:
            continue
        name, version = wanted.group("name"), wanted.group("version")
        found = lock.versions(name)
        if version not in found:
            held = f"pins {name} {' or '.join(sorted(found))}" if found else f"does not hold {name}"
            problems.append(f"the role installs {name}=={version}, but the lock {held}; {REGENERATE} for {version}")
    return problems


def python_problem(lock: Lock, python_version: str) -> str | None:
    """A lock generated for one Python version (uv without --universal) does not fit another."""
    if not lock.python or not python_version:
        return None
    host = ".".join(str(python_version).split(".")[:2])
    if host == lock.python:
        return None
    return (
        f"the lock was generated for Python {lock.python} (--python-version), the host runs Python {host}; "
        f"{REGENERATE} with --python-version {host}"
    )


def select(text: str, names: Iterable[str]) -> str:
    """The lock's entries of the named packages, as they are written in it."""
    wanted = {canonical(str(name).split("==")[0].split("[")[0].strip()) for name in names}
    return "".join(f"{entry.text}\n" for entry in parse(text).entries if entry.name in wanted)
