# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment report: what the phases recorded on each host, as quality gates, in JSON and Markdown."""

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_report
author: labai
version_added: "1.0.0"
short_description: The deployment report of a run of site.yml or rollback.yml
description:
  - Takes, per host, the records the phases keep as facts (C(llm_stack_phases), C(llm_stack_deployed),
    C(llm_stack_validated), C(llm_stack_registered), C(llm_stack_gateway_health), C(llm_stack_smoke),
    C(llm_stack_fallbacks), C(llm_stack_backups), C(llm_stack_restarted), C(llm_stack_restart_notes),
    C(llm_stack_failure), C(llm_stack_rollback), C(llm_stack_rollback_failure), C(llm_stack_warnings)) and
    returns the report; the outcome, the phases
    with status and duration, the quality gates (gate, required, actual, met), models registered, per-model
    time to first token and latency, fallbacks proven (or why a chain was not, in C(skipped)), backups, and
    what was rolled back, and the warnings of a run that succeeded (a validated deployment whose backup failed).
  - The records hold no secret, so neither does the report.
  - P(labai.llm_stack.deployment_report_markdown#filter) renders it as Markdown.
positional: meta
options:
  _input:
    description: Host name to that host's records.
    type: dict
    required: true
  meta:
    description: C(kind) (site or rollback), C(started), C(finished), C(ttft_max) (seconds).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the JSON report
  ansible.builtin.copy:
    content: "{{ runs | labai.llm_stack.deployment_report({'kind': 'site', 'ttft_max': 30}) | to_nice_json }}"
    dest: reports/deployment.json
    mode: "0644"
"""

RETURN = r"""
_value:
  description: C(kind), C(outcome) (succeeded, rolled back, failed), C(hosts), C(phases), C(gates), C(models),
    C(fallbacks), C(backups), C(failures), C(rollbacks), C(restarted), C(restart_notes), C(warnings) (host to
    its warnings; only hosts that have some).
  type: dict
"""

NOT_MEASURED = "not measured"


def _phases(runs: dict) -> list[dict]:
    """One row per phase: failed on any host that failed it, the longest duration."""
    rows: dict[str, dict] = {}
    for host, run in runs.items():
        for phase in run.get("llm_stack_phases") or []:
            key = str(phase["number"])
            row = rows.setdefault(
                key,
                {
                    "number": phase["number"],
                    "name": phase["name"],
                    "status": "ok",
                    "seconds": 0.0,
                    "started": None,
                    "details": [],
                },
            )
            row["seconds"] = max(row["seconds"], float(phase.get("seconds") or 0))
            row["started"] = min(filter(None, [row["started"], phase.get("started")]), default=None)
            if phase.get("status") != "ok":
                row["status"] = phase.get("status")
            if phase.get("detail"):
                row["details"].append(f"{host}: {phase['detail']}")
    # In the order the phases ran (each host records them in that order).
    return list(rows.values())


def _gate(name: str, required, actual, met: bool) -> dict:
    return {"gate": name, "required": required, "actual": actual, "met": bool(met)}


def _gates(runs: dict, phases: list[dict], ttft_max: float, smoke_tested: bool) -> list[dict]:
    deployed = [run.get("llm_stack_deployed") or {} for run in runs.values()]
    services = sum(len(record.get("services", [])) for record in deployed)
    public = sorted({name for record in deployed for name in record.get("public_names", [])})
    chains = sorted({name for record in deployed for name in record.get("fallbacks", {})})
    validated = [entry for run in runs.values() for entry in run.get("llm_stack_validated") or []]
    registered = sorted({name for run in runs.values() for name in run.get("llm_stack_registered") or []})
    health = [run.get("llm_stack_gateway_health") for run in runs.values() if run.get("llm_stack_gateway_health")]
    smoke = [entry for run in runs.values() for entry in run.get("llm_stack_smoke") or []]
    fallbacks = [entry for run in runs.values() for entry in run.get("llm_stack_fallbacks") or []]
    proven = sorted({entry["model"] for entry in fallbacks if not entry.get("skipped")})
    unchanged = sorted({entry["model"] for entry in fallbacks if entry.get("skipped") == "unchanged"})
    preflight = next((phase for phase in phases if str(phase["number"]) == "1"), None)
    ttfts = [entry["ttft"] for entry in smoke if entry["stream"]]

    gates = []
    if preflight is not None:
        gates.append(_gate("Pre-flight checks pass", "no problem", preflight["status"], preflight["status"] == "ok"))
    gates.append(
        _gate(
            "Servers healthy (listed names, real chat completion)",
            services,
            len(validated) if validated else NOT_MEASURED,
            services and len(validated) == services,
        )
    )
    gates.append(
        _gate(
            "Catalog names and aliases registered on the gateway",
            len(public),
            len(registered) if registered else NOT_MEASURED,
            bool(public) and set(public) <= set(registered),
        )
    )
    unhealthy = sum(entry.get("unhealthy", 0) for entry in health)
    gates.append(
        _gate(
            "Gateway health checks: unhealthy deployments",
            0,
            unhealthy if health else NOT_MEASURED,
            bool(health) and unhealthy == 0,
        )
    )
    if not smoke_tested:
        return gates
    for stream, label in ((False, "Chat completions"), (True, "Streamed completions (SSE)")):
        passed = sorted({entry["model"] for entry in smoke if entry["stream"] is stream})
        gates.append(
            _gate(
                f"{label} through the gateway",
                len(public),
                len(passed) if smoke else NOT_MEASURED,
                bool(public) and set(public) <= set(passed),
            )
        )
    gates.append(
        _gate(
            "Slowest time to first token (s)",
            f"<= {ttft_max}",
            max(ttfts) if ttfts else NOT_MEASURED,
            bool(ttfts) and max(ttfts) <= ttft_max,
        )
    )
    gates.append(
        _gate(
            "Fallback chains proven (in this run, or unchanged since)",
            len(chains),
            _proven_count(proven, unchanged, chains),
            set(chains) <= set(proven) | set(unchanged),
        )
    )
    return gates


def _proven_count(proven: list[str], unchanged: list[str], chains: list[str]):
    if not (proven or unchanged) and chains:
        return NOT_MEASURED
    if not unchanged:
        return len(proven)
    return f"{len(proven)} proven, {len(unchanged)} unchanged since proven"


SKIPPED_WORDS = {
    "unchanged": "not proven again: no unit serving the chain, nor the gateway, restarted in this run",
    "never": "not proven: llm_stack_prove_fallbacks is never",
}


def _served_by(entry: dict) -> str:
    if entry.get("skipped"):
        return SKIPPED_WORDS.get(entry["skipped"], f"not proven: {entry['skipped']}")
    return ", ".join(entry["served_by"])


def _models(runs: dict) -> list[dict]:
    models: dict[str, dict] = {}
    for run in runs.values():
        for name in run.get("llm_stack_registered") or []:
            models.setdefault(name, {"name": name, "registered": True})
        for entry in run.get("llm_stack_smoke") or []:
            row = models.setdefault(entry["model"], {"name": entry["model"], "registered": False})
            kind = "stream" if entry["stream"] else "plain"
            row[f"{kind}_seconds"] = entry["total_time"]
            if entry["stream"]:
                row["ttft"] = entry["ttft"]
            row["served_by"] = entry.get("model_group")
    return sorted(models.values(), key=lambda row: row["name"])


def deployment_report(runs: dict, meta: dict) -> dict:
    ttft_max = float(meta.get("ttft_max", 30))
    phases = _phases(runs)
    failures = {host: run["llm_stack_failure"] for host, run in runs.items() if run.get("llm_stack_failure")}
    rollbacks = {host: run["llm_stack_rollback"] for host, run in runs.items() if run.get("llm_stack_rollback")}
    rollback_failures = {
        host: run["llm_stack_rollback_failure"] for host, run in runs.items() if run.get("llm_stack_rollback_failure")
    }
    # A rollback validates what it restored (phase 4); it runs no smoke tests.
    gates = _gates(runs, phases, ttft_max, smoke_tested=meta.get("kind") != "rollback")
    if meta.get("kind") == "rollback":
        outcome = "failed" if failures or rollback_failures else "rolled back"
    elif failures:
        outcome = "rolled back" if rollbacks and not rollback_failures else "failed"
    else:
        outcome = "succeeded"
    return {
        "kind": meta.get("kind", "site"),
        "started": meta.get("started") or min((p["started"] for p in phases if p["started"]), default=None),
        "finished": meta.get("finished"),
        "outcome": outcome,
        "hosts": sorted(runs),
        "phases": phases,
        "gates": gates,
        "all_gates_met": all(gate["met"] for gate in gates),
        "models": _models(runs),
        "fallbacks": [entry for run in runs.values() for entry in run.get("llm_stack_fallbacks") or []],
        "backups": {host: run.get("llm_stack_backups") or [] for host, run in runs.items()},
        "restarted": {host: run.get("llm_stack_restarted") or [] for host, run in runs.items()},
        "restart_notes": [note for run in runs.values() for note in run.get("llm_stack_restart_notes") or []],
        "failures": failures,
        "rollbacks": rollbacks,
        "rollback_failures": rollback_failures,
        "warnings": {host: run["llm_stack_warnings"] for host, run in runs.items() if run.get("llm_stack_warnings")},
    }


def _table(header: list[str], rows: list[list]) -> list[str]:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cell(value) for value in row) + " |" for row in rows
    ]


def deployment_report_markdown(report: dict) -> str:
    title = "Rollback report" if report["kind"] == "rollback" else "Deployment report"
    lines = [
        f"# {title}: {report['outcome']}",
        "",
        f"- Hosts: {', '.join(report['hosts'])}",
        f"- Started: {report['started']}; finished: {report['finished']}",
        f"- All quality gates met: {'yes' if report['all_gates_met'] else 'no'}",
        "",
        "## Phases",
        "",
        *_table(
            ["Phase", "Name", "Status", "Seconds", "Detail"],
            [[p["number"], p["name"], p["status"], p["seconds"], "; ".join(p["details"])] for p in report["phases"]],
        ),
        "",
        "## Quality gates",
        "",
        *_table(
            ["Gate", "Required", "Actual", "Met"],
            [[g["gate"], g["required"], g["actual"], "yes" if g["met"] else "NO"] for g in report["gates"]],
        ),
        "",
        "## Models",
        "",
        *_table(
            ["Model", "Registered", "Served by", "TTFT (s)", "Plain (s)", "Streamed (s)"],
            [
                [
                    m["name"],
                    "yes" if m["registered"] else "no",
                    m.get("served_by", ""),
                    m.get("ttft", ""),
                    m.get("plain_seconds", ""),
                    m.get("stream_seconds", ""),
                ]
                for m in report["models"]
            ],
        ),
        "",
        "## Fallbacks proven",
        "",
        *_table(
            ["Primary (stopped)", "Chain", "Served by", "Attempted fallbacks"],
            [
                [f["model"], " -> ".join(f["chain"]), _served_by(f), f.get("attempted_fallbacks", "")]
                for f in report["fallbacks"]
            ],
        ),
        "",
        "## Restarts",
        "",
        *[f"- {host}: {', '.join(units) or 'none'}" for host, units in sorted(report["restarted"].items())],
        *[f"- {note}" for note in report.get("restart_notes", [])],
        "",
        "## Backups",
        "",
        *_table(
            ["Host", "When", "Backup", "New", "Files", "Where"],
            [
                [host, b["label"], b["backup"], "yes" if b["created"] else "no (unchanged)", len(b["files"]), b["path"]]
                for host, entries in report["backups"].items()
                for b in entries
            ],
        ),
    ]
    warnings = report.get("warnings") or {}
    if warnings:
        lines += [
            "",
            "## Warnings",
            "",
            *[f"- {host}: {text}" for host, texts in sorted(warnings.items()) for text in texts],
        ]
    if report["failures"] or report["rollbacks"] or report["rollback_failures"]:
        lines += ["", "## Failure and rollback", ""]
        if report["rollbacks"] and report["kind"] != "rollback":
            lines += [
                "The gates measured after the failure are those of the validation of the restored deployment.",
                "",
            ]
        for host, failure in report["failures"].items():
            lines += [
                f"- {host}: phase {failure.get('phase')} ({failure.get('name')}) failed:",
                "",
                "  ```",
                *[f"  {line}" for line in str(failure.get("msg")).splitlines()],
                "  ```",
            ]
        for host, rollback in report["rollbacks"].items():
            lines.append(
                f"- {host}: restored backup {rollback['backup']} ({len(rollback['restored'])} files written back, "
                f"{len(rollback['removed'])} removed; what it replaced is kept as "
                f"{rollback['saved_before_restore'] or 'nothing (no file differed)'})"
            )
            refreshed = rollback.get("secrets_refreshed") or []
            if refreshed:
                lines.append(
                    f"  The secrets in {', '.join(refreshed)} are the inventory's current ones, not the backup's."
                )
        for host, failure in report["rollback_failures"].items():
            lines.append(f"- {host}: the rollback failed too: {failure}")
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self) -> dict:
        return {
            "deployment_report": deployment_report,
            "deployment_report_markdown": deployment_report_markdown,
        }
