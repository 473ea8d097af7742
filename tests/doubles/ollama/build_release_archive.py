#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Package the Ollama test double the way Ollama ships ``ollama-linux-amd64.tgz``.

The archive holds ``./bin/ollama`` (the double, executable) and ``./lib/ollama/`` (``registry.json``, the
models the double can pull, and ``README.txt``), so that ``tar -xzf ollama-linux-amd64.tgz -C /usr`` or any
other prefix installs it exactly where a role installs the real release. The tar is deterministic (sorted
entries, fixed mtimes and owners, gzip header without name or time), so its sha256 is stable and can be
pinned like a real release's. ``sha256sum.txt`` is written in ``sha256sum`` format, as Ollama publishes it.

Usage: build_release_archive.py --out DIR [--version 0.13.5]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
DOUBLE = HERE / "ollama_double.py"
ARCHIVE_NAME = "ollama-linux-amd64.tgz"
CHECKSUM_NAME = "sha256sum.txt"
SHEBANG = "#!/usr/bin/env python3\n"
FIXED_MTIME = 1735689600  # 2025-01-01T00:00:00Z
VERSION_LINE = re.compile(r'^VERSION = "[^"]*"$', re.MULTILINE)
SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?")

README = """\
Ollama {version} -- TEST DOUBLE, NOT OLLAMA

This archive is laid out like Ollama's release asset ollama-linux-amd64.tgz, but bin/ollama is a small
Python 3 (standard library) program that imitates the ollama CLI and HTTP API for tests. It runs no model:
chat replies are deterministic text and pulled models are manifests only.

  bin/ollama serve          HTTP API on OLLAMA_HOST (default 127.0.0.1:11434)
  bin/ollama --version      "ollama version is {version}" when a server answers
  bin/ollama list           the pulled models

lib/ollama/registry.json lists the models the double can pull (OLLAMA_DOUBLE_REGISTRY names another file).
Every HTTP response carries the header "X-Test-Double: ollama".
"""


def load_double() -> ModuleType:
    """Import ollama_double.py (for its built-in registry) without running it."""
    spec = importlib.util.spec_from_file_location("ollama_double", DOUBLE)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {DOUBLE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def render_binary(source: str, version: str) -> bytes:
    """The double as bin/ollama: the python3 shebang and the version it reports."""
    if not source.startswith(SHEBANG):
        raise ValueError(f"{DOUBLE} must start with {SHEBANG.strip()!r}")
    text, count = VERSION_LINE.subn(f'VERSION = "{version}"', source)
    if count != 1:
        raise ValueError(f"{DOUBLE} must hold exactly one VERSION line, found {count}")
    return text.encode()


def archive_files(version: str) -> dict[str, tuple[bytes, int]]:
    """Archive member name -> (content, mode) for every regular file."""
    registry = load_double().DEFAULT_REGISTRY
    return {
        "./bin/ollama": (render_binary(DOUBLE.read_text(encoding="utf-8"), version), 0o755),
        "./lib/ollama/README.txt": (README.format(version=version).encode(), 0o644),
        "./lib/ollama/registry.json": (
            (json.dumps(registry, indent=2, sort_keys=True) + "\n").encode(),
            0o644,
        ),
    }


def _member(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A sorted, fixed-metadata tar of the files and their parent directories ("./" first)."""
    dirs = {"./"}
    for name in files:
        parts = name.split("/")[1:-1]
        dirs.update("./" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs | set(files)):
            if name in dirs:
                tar.addfile(_member(name, tarfile.DIRTYPE, 0o755))
            else:
                content, mode = files[name]
                tar.addfile(_member(name, tarfile.REGTYPE, mode, len(content)), io.BytesIO(content))
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no file name and a zero timestamp in the header."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as stream:
        stream.write(data)
    return buffer.getvalue()


def build(out: Path, version: str) -> tuple[Path, str]:
    """Write the archive and sha256sum.txt into out; return the archive path and its sha256."""
    if not SEMVER.fullmatch(version):
        raise ValueError(f"version {version!r} is not like 0.13.5")
    archive = gzip_bytes(build_tar(archive_files(version)))
    digest = hashlib.sha256(archive).hexdigest()
    out.mkdir(parents=True, exist_ok=True)
    path = out / ARCHIVE_NAME
    path.write_bytes(archive)
    (out / CHECKSUM_NAME).write_text(f"{digest}  ./{ARCHIVE_NAME}\n", encoding="utf-8")
    return path, digest


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the archive into")
    parser.add_argument("--version", default=load_double().VERSION, help="version the double reports")
    args = parser.parse_args(argv)
    try:
        path, digest = build(args.out, args.version)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"archive: {path}")
    print(f"sha256: {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
