"""Install collections from the PyPI 'ansible' wheel into a collections directory.

Ansible Galaxy is not reachable from the lab or CI, but PyPI is, and the 'ansible' wheel carries
every community collection. Only the collections named in the list file are extracted.

    python scripts/collections_from_wheel.py requirements-collections.txt .collections/ansible_collections
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def read_list(path: Path) -> tuple[str, list[str]]:
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or "==" not in lines[0]:
        sys.exit(f"{path}: the first entry must pin the wheel, e.g. 'ansible==12.3.0'")
    return lines[0], lines[1:]


def installed_version(target: Path, fqcn: str) -> str | None:
    manifest = target.joinpath(*fqcn.split("."), "MANIFEST.json")
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def main() -> None:
    list_file, target = Path(sys.argv[1]), Path(sys.argv[2])
    wheel_pin, wanted = read_list(list_file)
    stamp = target / f".from-{wheel_pin.replace('==', '-')}"
    if stamp.exists() and all(installed_version(target, c) for c in wanted):
        print(f"collections from {wheel_pin} present: {', '.join(wanted)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"downloading {wheel_pin} to extract {', '.join(wanted)}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                tmp,
                wheel_pin,
            ],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for fqcn in wanted:
                prefix = "ansible_collections/" + fqcn.replace(".", "/") + "/"
                members = [m for m in zf.namelist() if m.startswith(prefix)]
                if not members:
                    sys.exit(f"{wheel.name} has no collection {fqcn}")
                shutil.rmtree(target.joinpath(*fqcn.split(".")), ignore_errors=True)
                for member in members:
                    zf.extract(member, target.parent)
                print(f"installed {fqcn} {installed_version(target, fqcn)}")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    for old in target.glob(".from-*"):
        old.unlink()
    stamp.touch()


if __name__ == "__main__":
    main()
