"""Real PEM files for the TLS checks' tests, issued with the controller's openssl as an operator's CA would."""

from __future__ import annotations

import subprocess
from pathlib import Path

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(directory: Path, names: str = "IP:127.0.0.1,DNS:localhost", days: int = 30) -> dict[str, str]:
    """A CA, and a server certificate it signs for ``names`` (a subjectAltName value), with its key."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        *EC,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "30",
        "-subj",
        "/CN=test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        cwd=directory,
    )
    _openssl("req", *EC, "-keyout", "gateway.key", "-out", "gateway.csr", "-subj", "/CN=gateway", cwd=directory)
    (directory / "gateway.ext").write_text(f"subjectAltName={names}\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "gateway.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        str(days),
        "-extfile",
        "gateway.ext",
        "-out",
        "gateway.crt",
        cwd=directory,
    )
    return {
        "certificate": str(directory / "gateway.crt"),
        "private_key": str(directory / "gateway.key"),
        "ca_certificate": str(directory / "ca.crt"),
    }
