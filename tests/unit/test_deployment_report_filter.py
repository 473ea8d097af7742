"""The deployment report: outcome, phases and quality gates from the phases' records."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.labai.llm_stack.plugins.filter.deployment_report import (
    deployment_report,
    deployment_report_markdown,
)

META = {"kind": "site", "finished": "2026-11-26T07:10:00+00:00", "ttft_max": 30}


def phase(number, name, *, status="ok", seconds=1.0, started="2026-11-26T07:00:00+00:00", detail=""):
    return {
        "number": number,
        "name": name,
        "status": status,
        "seconds": seconds,
        "started": started,
        "epoch": 0,
        "detail": detail,
    }


@pytest.fixture
def run() -> dict:
    """One host's records after a good run of site.yml on the lab catalog."""
    return {
        "llm_stack_phases": [
            phase(1, "pre-flight checks", started="2026-11-26T07:00:00+00:00"),
            phase(2, "configuration deploy", started="2026-11-26T07:00:10+00:00", seconds=60.0),
            phase(3, "restart", started="2026-11-26T07:01:10+00:00"),
            phase(4, "integration validation", started="2026-11-26T07:02:00+00:00"),
            phase(5, "smoke tests", started="2026-11-26T07:03:00+00:00"),
        ],
        "llm_stack_deployed": {
            "services": [
                {"unit": "llm-vllm-a.service"},
                {"unit": "llm-ollama.service"},
                {"unit": "llm-litellm.service"},
            ],
            "public_names": ["a", "a-alias", "b"],
            "fallbacks": {"a": ["b"]},
        },
        "llm_stack_validated": [
            {"unit": "llm-vllm-a.service"},
            {"unit": "llm-ollama.service"},
            {"unit": "llm-litellm.service"},
        ],
        "llm_stack_registered": ["a", "a-alias", "b"],
        "llm_stack_gateway_health": {"healthy": 2, "unhealthy": 0},
        "llm_stack_smoke": [
            {
                "model": name,
                "stream": stream,
                "ttft": 0.4 if stream else 0.9,
                "total_time": 0.9,
                "chunks": 3,
                "content_length": 12,
                "model_group": name.replace("-alias", ""),
            }
            for name in ("a", "a-alias", "b")
            for stream in (False, True)
        ],
        "llm_stack_fallbacks": [
            {
                "model": "a",
                "chain": ["b"],
                "stopped": ["llm-vllm-a.service"],
                "served_by": ["b"],
                "attempted_fallbacks": 1,
            }
        ],
        "llm_stack_backups": [
            {
                "label": "before deploy",
                "backup": "20261126T070010.000001Z",
                "path": "/x/1",
                "created": True,
                "files": ["/u/llm-vllm-a.service"],
            }
        ],
        "llm_stack_restarted": ["llm-vllm-a.service"],
    }


FALLBACK_GATE = "Fallback chains proven (in this run, or unchanged since)"


def gates(report):
    return {gate["gate"]: gate for gate in report["gates"]}


def test_a_good_run_meets_every_gate(run):
    report = deployment_report({"gpu01": run}, META)
    assert report["outcome"] == "succeeded"
    assert report["all_gates_met"] is True
    assert [p["number"] for p in report["phases"]] == [1, 2, 3, 4, 5]
    assert report["phases"][1]["seconds"] == 60.0
    table = gates(report)
    assert table["Catalog names and aliases registered on the gateway"] == {
        "gate": "Catalog names and aliases registered on the gateway",
        "required": 3,
        "actual": 3,
        "met": True,
    }
    assert table["Slowest time to first token (s)"]["actual"] == 0.4
    assert table[FALLBACK_GATE]["met"] is True


def test_models_carry_ttft_and_latency(run):
    models = {m["name"]: m for m in deployment_report({"gpu01": run}, META)["models"]}
    assert models["a"] == {
        "name": "a",
        "registered": True,
        "plain_seconds": 0.9,
        "stream_seconds": 0.9,
        "ttft": 0.4,
        "served_by": "a",
    }


def test_a_missing_name_fails_its_gate(run):
    run["llm_stack_registered"] = ["a", "b"]
    report = deployment_report({"gpu01": run}, META)
    gate = gates(report)["Catalog names and aliases registered on the gateway"]
    assert (gate["actual"], gate["met"]) == (2, False)
    assert report["all_gates_met"] is False


def test_a_slow_first_token_fails_its_gate(run):
    run["llm_stack_smoke"][1]["ttft"] = 31.5
    gate = gates(deployment_report({"gpu01": run}, META))["Slowest time to first token (s)"]
    assert gate == {"gate": "Slowest time to first token (s)", "required": "<= 30.0", "actual": 31.5, "met": False}


def test_unmeasured_gates_are_not_met(run):
    for key in (
        "llm_stack_validated",
        "llm_stack_registered",
        "llm_stack_gateway_health",
        "llm_stack_smoke",
        "llm_stack_fallbacks",
    ):
        del run[key]
    report = deployment_report({"gpu01": run}, META)
    unmet = [gate for gate in report["gates"] if gate["gate"] != "Pre-flight checks pass"]
    assert all(gate["actual"] == "not measured" and gate["met"] is False for gate in unmet)


def test_a_failed_phase_that_was_rolled_back(run):
    run["llm_stack_phases"][3] = phase(4, "integration validation", status="failed", detail="lab-cpp missing")
    run["llm_stack_phases"].append(phase("R", "automatic rollback", started="2026-11-26T07:04:00+00:00"))
    run["llm_stack_failure"] = {"phase": 4, "name": "integration validation", "task": "x", "msg": "lab-cpp missing"}
    run["llm_stack_rollback"] = {
        "backup": "20261126T070010.000001Z",
        "restored": ["/u/a"],
        "removed": [],
        "saved_before_restore": "20261126T070400.000002Z",
        "secrets_refreshed": ["/u/litellm.env"],
    }
    report = deployment_report({"gpu01": run}, META)
    assert report["outcome"] == "rolled back"
    assert report["phases"][3]["details"] == ["gpu01: lab-cpp missing"]
    markdown = deployment_report_markdown(report)
    assert "# Deployment report: rolled back" in markdown
    assert "- gpu01: phase 4 (integration validation) failed:\n\n  ```\n  lab-cpp missing\n  ```\n" in markdown
    assert (
        "- gpu01: restored backup 20261126T070010.000001Z (1 files written back, 0 removed; what it replaced "
        "is kept as 20261126T070400.000002Z)\n"
        "  The secrets in /u/litellm.env are the inventory's current ones, not the backup's."
    ) in markdown


def test_a_rollback_that_refreshed_no_secret_says_nothing_of_them(run):
    run["llm_stack_rollback"] = {"backup": "b", "restored": ["/u/a"], "removed": [], "saved_before_restore": ""}
    assert "secrets" not in deployment_report_markdown(deployment_report({"gpu01": run}, META))


def test_a_validated_deployment_whose_backup_failed_succeeds_with_a_warning(run):
    warning = "The validated deployment serves, but its backup failed: No space left on device"
    report = deployment_report({"gpu01": run, "gpu02": copy.deepcopy(run) | {"llm_stack_warnings": [warning]}}, META)
    assert report["outcome"] == "succeeded" and report["rollbacks"] == {}
    assert report["warnings"] == {"gpu02": [warning]}
    assert f"## Warnings\n\n- gpu02: {warning}\n" in deployment_report_markdown(report)
    assert "## Warnings" not in deployment_report_markdown(deployment_report({"gpu01": run}, META))


def test_a_failed_rollback_is_a_failed_run(run):
    run["llm_stack_failure"] = {"phase": 3, "name": "restart", "task": "x", "msg": "unit died"}
    run["llm_stack_rollback_failure"] = "no backup"
    assert deployment_report({"gpu01": run}, META)["outcome"] == "failed"


def test_rollback_report(run):
    run["llm_stack_rollback"] = {"backup": "b", "restored": [], "removed": [], "saved_before_restore": ""}
    for key in ("llm_stack_smoke", "llm_stack_fallbacks"):
        del run[key]
    report = deployment_report({"gpu01": run}, META | {"kind": "rollback"})
    assert report["outcome"] == "rolled back"
    assert [gate["gate"] for gate in report["gates"]] == [
        "Pre-flight checks pass",
        "Servers healthy (listed names, real chat completion)",
        "Catalog names and aliases registered on the gateway",
        "Gateway health checks: unhealthy deployments",
    ]
    assert report["all_gates_met"] is True
    assert deployment_report_markdown(report).startswith("# Rollback report: rolled back\n")


def test_phases_of_several_hosts_merge_to_the_worst(run):
    other = copy.deepcopy(run)
    other["llm_stack_phases"][2] = phase(3, "restart", status="failed", seconds=9.0, detail="boom")
    report = deployment_report({"gpu01": run, "gpu02": other}, META)
    restart = report["phases"][2]
    assert (restart["status"], restart["seconds"], restart["details"]) == ("failed", 9.0, ["gpu02: boom"])


def test_markdown_tables(run):
    markdown = deployment_report_markdown(deployment_report({"gpu01": run}, META))
    assert "| Gate | Required | Actual | Met |" in markdown
    assert "| Catalog names and aliases registered on the gateway | 3 | 3 | yes |" in markdown
    assert "| a | b | b | 1 |" in markdown
    assert "| gpu01 | before deploy | 20261126T070010.000001Z | yes | 1 | /x/1 |" in markdown


def test_a_chain_unchanged_since_its_proof_meets_the_gate_and_says_so(run):
    run["llm_stack_fallbacks"] = [{"model": "a", "chain": ["b"], "skipped": "unchanged"}]
    report = deployment_report({"gpu01": run}, META)
    gate = gates(report)[FALLBACK_GATE]
    assert (gate["actual"], gate["met"]) == ("0 proven, 1 unchanged since proven", True)
    markdown = deployment_report_markdown(report)
    skipped = "not proven again: no unit serving the chain, nor the gateway, restarted in this run"
    assert f"| a | b | {skipped} |  |" in markdown


def test_a_chain_never_proven_fails_the_gate(run):
    run["llm_stack_fallbacks"] = [{"model": "a", "chain": ["b"], "skipped": "never"}]
    report = deployment_report({"gpu01": run}, META)
    gate = gates(report)[FALLBACK_GATE]
    assert (gate["actual"], gate["met"]) == ("not measured", False)
    assert "not proven: llm_stack_prove_fallbacks is never" in deployment_report_markdown(report)


def test_restarts_and_single_instance_notes_are_reported(run):
    run["llm_stack_restart_notes"] = [
        "a has one instance: while llm-vllm-a.service restarted on gpu01, its fallbacks b served it"
    ]
    report = deployment_report({"gpu01": run}, META)
    assert report["restart_notes"] == run["llm_stack_restart_notes"]
    markdown = deployment_report_markdown(report)
    assert "## Restarts\n\n- gpu01: llm-vllm-a.service\n- a has one instance: while llm-vllm-a.service" in markdown
