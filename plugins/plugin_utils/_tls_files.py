# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checking the gateway's TLS files on the controller before any host is contacted: each is there and
readable; a certificate that is not vault-encrypted covers the host the gateway is probed at and reached
by, is valid now, and matches its key (when that is not vault-encrypted either)."""

from __future__ import annotations

import ipaddress
import os
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

Problem = tuple[str, str]  # (what is wrong, how to fix it)
VAULT_HEADER = b"$ANSIBLE_VAULT"
WHERE = "llm_stack_catalog.gateway.tls"
REISSUE_FIX = "issue the gateway a certificate whose subjectAltName holds {hosts}"


def _readable(name: str, source: str) -> Problem | None:
    path = Path(source)
    fix = f"point gateway.tls.{name} at the PEM file on the controller"
    if not path.exists():
        return f"{source!r} does not exist on the controller", fix
    if not path.is_file():
        return f"{source!r} is not a regular file", fix
    if not os.access(path, os.R_OK):
        return f"{source!r} cannot be read by the user running Ansible", "make it readable by that user"
    return None


def _vaulted(source: str) -> bool:
    with open(source, "rb") as handle:
        return handle.read(len(VAULT_HEADER)) == VAULT_HEADER


def _decoded(source: str) -> dict | None:
    """The certificate's fields, as the ssl module reads them; None when it is no PEM certificate."""
    try:
        return ssl._ssl._test_decode_cert(source)  # the standard library's own PEM reader
    except (ssl.SSLError, OSError, ValueError):
        return None


def _covers(names: list[tuple[str, str]], host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return any(kind == "DNS" and _dns_match(value, host) for kind, value in names)
    return any(kind == "IP Address" and _same_ip(value, address) for kind, value in names)


def _same_ip(value: str, address) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) == address
    except ValueError:
        return False


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def _certificate_problems(source: str, hosts: list[str], now: float) -> list[Problem]:
    fields = _decoded(source)
    if fields is None:
        return [(f"{source!r} is not a PEM certificate", "point gateway.tls.certificate at the PEM certificate")]
    problems = []
    names = list(fields.get("subjectAltName") or [])
    missing = [host for host in hosts if not _covers(names, host)]
    if missing:
        held = ", ".join(f"{kind}:{value}" for kind, value in names) or "no subjectAltName"
        fix = REISSUE_FIX.format(hosts=", ".join(missing))
        problems.append((f"{source!r} does not cover {', '.join(missing)} (it holds {held})", fix))
    not_after = fields.get("notAfter")
    if not_after and ssl.cert_time_to_seconds(not_after) <= now:
        problems.append((f"{source!r} expired on {not_after}", "renew the gateway's certificate"))
    not_before = fields.get("notBefore")
    if not_before and ssl.cert_time_to_seconds(not_before) > now:
        fix = "check the controller's clock or the certificate"
        problems.append((f"{source!r} is not valid before {not_before}", fix))
    return problems


def _pair_problem(certificate: str, private_key: str) -> Problem | None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certificate, private_key)
    except (ssl.SSLError, OSError) as err:
        return (
            f"{private_key!r} is not the key of {certificate!r} ({err.reason or err})",
            "give the private key the certificate was issued for (unencrypted PEM)",
        )
    return None


def tls_file_problems(records: list[Mapping], now: float | None = None) -> list[tuple[str, Problem]]:
    """(field, problem) for each gateway record's TLS files: those the hosts will need, checked here."""
    now = time.time() if now is None else now
    found: list[tuple[str, Problem]] = []
    for record in records:
        sources = (record.get("tls") or {}).get("sources") or {}
        plain = {}
        for name, source in sources.items():
            problem = _readable(name, source)
            if problem:
                found.append((f"{WHERE}.{name}", problem))
            elif not _vaulted(source):
                plain[name] = source
        hosts = list(dict.fromkeys(urlsplit(record[url]).hostname for url in ("probe_url", "api_base")))
        if "certificate" in plain:
            problems = _certificate_problems(plain["certificate"], hosts, now)
            found += [(f"{WHERE}.certificate", problem) for problem in problems]
        if "ca_certificate" in plain and _decoded(plain["ca_certificate"]) is None:
            what = f"{plain['ca_certificate']!r} is not a PEM certificate"
            fix = "point gateway.tls.ca_certificate at the CA's PEM certificate"
            found.append((f"{WHERE}.ca_certificate", (what, fix)))
        if "certificate" in plain and "private_key" in plain:
            problem = _pair_problem(plain["certificate"], plain["private_key"])
            if problem:
                found.append((f"{WHERE}.private_key", problem))
    return found
