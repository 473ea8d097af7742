# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_facts against the nvidia-smi test double replaying every recorded case, and its parsing on its own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from ansible.plugins.doc_fragments.action_common_attributes import ModuleDocFragment
from ansible_collections.labai.llm_stack.plugins.module_utils import _nvidia_smi as smi
from ansible_collections.labai.llm_stack.plugins.modules import gpu_facts
from module_runner import run_module

TESTS = Path(__file__).resolve().parents[1]
DOUBLE = TESTS / "doubles" / "nvidia-smi" / "nvidia-smi"
FIXTURES = TESTS / "fixtures" / "nvidia_smi"
RESULT_KEYS = {"changed", "state", "msg", "gpus", "driver_version", "cuda_version", "ansible_facts"}

H100 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-5a3c9e21-7f4b-4d2e-9c1a-0b8e6d4f2a00",
    "memory_total_mib": 81559,
    "memory_used_mib": 1024,
    "memory_free_mib": 80014,
    "driver_version": "550.90.07",
    "compute_capability": "9.0",
    "persistence_mode": True,
    "processes": [],
}
RTX5000 = {
    "index": 0,
    "name": "Quadro RTX 5000",
    "uuid": "GPU-2f0e1b7c-93d4-6a58-c1e2-7d4b9a0f3e16",
    "memory_total_mib": 16384,
    "memory_used_mib": 1,
    "memory_free_mib": 16122,
    "driver_version": "535.183.01",
    "compute_capability": "7.5",
    "persistence_mode": False,
    "processes": [],
}
A100 = {
    "name": "NVIDIA A100-SXM4-80GB",
    "memory_total_mib": 81920,
    "driver_version": "550.54.15",
    "compute_capability": "8.0",
    "persistence_mode": True,
}
A100_2 = [
    {
        **A100,
        "index": 0,
        "uuid": "GPU-7c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
        "memory_used_mib": 1,
        "memory_free_mib": 81353,
        "processes": [],
    },
    {
        **A100,
        "index": 1,
        "uuid": "GPU-d9e8f7a6-b5c4-4d3e-8f2a-1b0c9d8e7f60",
        "memory_used_mib": 72309,
        "memory_free_mib": 9045,
        "processes": [{"pid": 48213, "process_name": "/srv/llm/vllm/bin/python3", "used_memory_mib": 72296}],
    },
]
H200 = {
    "index": 0,
    "name": "NVIDIA H200",
    "uuid": "GPU-83846d5a-0850-c665-7f12-5e13eaaacf65",
    "memory_total_mib": 143771,
    "memory_used_mib": 0,
    "memory_free_mib": 143156,
    "driver_version": "580.159.04",
    "compute_capability": "9.0",
    "persistence_mode": True,
    "processes": [],
}
H200_BUSY = {
    **H200,
    "memory_used_mib": 103019,
    "memory_free_mib": 40138,
    "processes": [{"pid": 509, "process_name": "python3", "used_memory_mib": 103010}],
}
GOOD = {
    # Recorded by scripts/gpu-check.sh on a lent H200, idle and with 100 GiB held by torch (GPU_CHECK_HOLD_GIB).
    "h200-1": (
        [H200],
        "580.159.04",
        "13.0",
        "1 GPU(s), driver 580.159.04, CUDA 13.0: GPU 0 NVIDIA H200 143771 MiB (143156 MiB free)",
    ),
    "h200-1-busy": (
        [H200_BUSY],
        "580.159.04",
        "13.0",
        "1 GPU(s), driver 580.159.04, CUDA 13.0: GPU 0 NVIDIA H200 143771 MiB (40138 MiB free)",
    ),
    "h100-1": (
        [H100],
        "550.90.07",
        "12.4",
        "1 GPU(s), driver 550.90.07, CUDA 12.4: GPU 0 NVIDIA H100 80GB HBM3 81559 MiB (80014 MiB free)",
    ),
    "rtx5000-1": (
        [RTX5000],
        "535.183.01",
        "12.2",
        "1 GPU(s), driver 535.183.01, CUDA 12.2: GPU 0 Quadro RTX 5000 16384 MiB (16122 MiB free)",
    ),
    "a100-2": (
        A100_2,
        "550.54.15",
        "12.4",
        "2 GPU(s), driver 550.54.15, CUDA 12.4: GPU 0 NVIDIA A100-SXM4-80GB 81920 MiB (81353 MiB free), "
        "GPU 1 NVIDIA A100-SXM4-80GB 81920 MiB (9045 MiB free)",
    ),
}
INSTALL = "install the NVIDIA driver, e.g. with the role labai.llm_stack.nvidia_driver"
BAD = {
    "mismatch": (
        "driver_mismatch",
        "nvidia-smi: Failed to initialize NVML: Driver/library version mismatch NVML library version: 550.127: "
        "the loaded nvidia kernel module and the driver's user-space library are different versions, as after a "
        "driver upgrade without a reboot; reboot, or unload and reload the nvidia kernel modules (modprobe -r "
        "nvidia_uvm nvidia_drm nvidia_modeset nvidia, then modprobe nvidia).",
    ),
    "no-driver": (
        "not_loaded",
        "nvidia-smi could not communicate with the NVIDIA driver: the nvidia kernel module is not loaded (not "
        "built for the running kernel, nouveau holding the GPU, an unsigned module under Secure Boot, or no "
        f"reboot since the install); load it with modprobe nvidia, or {INSTALL} and reboot.",
    ),
    "no-gpu": (
        "no_gpu",
        "nvidia-smi found no NVIDIA GPU (No devices were found): check that the GPU is present (lspci -d 10de:) "
        "and passed through to this machine, and that the driver supports it.",
    ),
}


def gpu_facts_of(capsys, monkeypatch, case: str | Path | None, check_mode: bool = False, **args) -> dict:
    """Run the module with the double replaying ``case`` (a fixture name or a directory)."""
    if case is None:
        monkeypatch.delenv("NVIDIA_SMI_CASE", raising=False)
    else:
        monkeypatch.setenv("NVIDIA_SMI_CASE", str(FIXTURES / case if isinstance(case, str) else case))
    monkeypatch.setenv("NVIDIA_SMI_CASE_FILE", "/nonexistent")
    monkeypatch.delenv("LAB_GPUS", raising=False)
    return run_module(gpu_facts.main, {"nvidia_smi": str(DOUBLE), **args}, capsys, check_mode)


@pytest.fixture
def on_path(tmp_path, monkeypatch) -> Path:
    """The double as ``nvidia-smi`` on PATH, as on a lab host."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").symlink_to(DOUBLE)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


# ---------------------------------------------------------------------------------------------------------
# The module


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("case", sorted(GOOD))
def test_recorded_gpus(capsys, monkeypatch, case, check_mode):
    gpus, driver, cuda, msg = GOOD[case]
    result = gpu_facts_of(capsys, monkeypatch, case, check_mode=check_mode, required=True)
    assert "failed" not in result, result["msg"]
    facts = {"state": "ok", "msg": msg, "gpus": gpus, "driver_version": driver, "cuda_version": cuda}
    assert {key: result[key] for key in facts} == facts
    assert result["ansible_facts"] == {"gpu_facts": facts}
    assert result["changed"] is False
    assert set(result) - {"raw", "invocation"} == RESULT_KEYS


@pytest.mark.parametrize("case", sorted(BAD))
def test_states_without_required(capsys, monkeypatch, case):
    state, msg = BAD[case]
    result = gpu_facts_of(capsys, monkeypatch, case)
    assert "failed" not in result, result["msg"]
    facts = {"state": state, "msg": msg, "gpus": [], "driver_version": None, "cuda_version": None}
    assert {key: result[key] for key in facts} == facts
    assert result["ansible_facts"] == {"gpu_facts": facts}


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_states_fail_when_required(capsys, monkeypatch, case, check_mode):
    state, msg = BAD[case]
    result = gpu_facts_of(capsys, monkeypatch, case, check_mode=check_mode, required=True)
    assert result["failed"] is True
    assert (result["msg"], result["state"], result["gpus"]) == (msg, state, [])


def test_missing_nvidia_smi(capsys, monkeypatch, tmp_path):
    absent = str(tmp_path / "nvidia-smi")
    result = gpu_facts_of(capsys, monkeypatch, None, nvidia_smi=absent)
    assert "failed" not in result
    assert (result["state"], result["gpus"]) == ("no_driver", [])
    assert result["msg"] == f"{absent} was not found: the NVIDIA driver is not installed; {INSTALL}."
    required = gpu_facts_of(capsys, monkeypatch, None, nvidia_smi=absent, required=True)
    assert required["failed"] is True and required["msg"] == result["msg"]


def test_missing_from_path(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    result = gpu_facts_of(capsys, monkeypatch, None, nvidia_smi="nvidia-smi-absent-here", required=True)
    assert result["failed"] is True and result["state"] == "no_driver"
    assert result["msg"].startswith("nvidia-smi-absent-here was not found: the NVIDIA driver is not installed")


def test_found_on_path_with_the_default_option(capsys, monkeypatch, on_path):
    """No case: the double's built-in answer, the same as the recorded h100-1."""
    monkeypatch.delenv("NVIDIA_SMI_CASE", raising=False)
    monkeypatch.setenv("NVIDIA_SMI_CASE_FILE", "/nonexistent")
    monkeypatch.setenv("LAB_GPUS", "2")
    result = run_module(gpu_facts.main, {}, capsys)
    assert result["state"] == "ok", result["msg"]
    second = {**H100, "index": 1, "uuid": "GPU-5a3c9e21-7f4b-4d2e-9c1a-0b8e6d4f2a01"}
    assert result["gpus"] == [H100, second]
    assert (result["driver_version"], result["cuda_version"]) == ("550.90.07", "12.4")


def write_case(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_an_unknown_failure_fails_even_when_not_required(capsys, monkeypatch, tmp_path):
    said = "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error\n"
    case = write_case(tmp_path / "lost", {"query-gpu.csv": said, "query-gpu.rc": "255\n"})
    result = gpu_facts_of(capsys, monkeypatch, case)
    assert result["failed"] is True and result["state"] == "error"
    assert result["msg"] == (
        "nvidia-smi failed with exit status 255: Unable to determine the device handle for GPU 0000:0B:00.0: "
        "Unknown Error"
    )


def test_unreadable_output_fails(capsys, monkeypatch, tmp_path):
    case = write_case(tmp_path / "odd", {"query-gpu.csv": "0, Some GPU, 1024\n"})
    result = gpu_facts_of(capsys, monkeypatch, case)
    assert result["failed"] is True
    assert result["msg"] == (
        f"{DOUBLE} answered what this module cannot read: nvidia-smi --query-gpu answered a line of 3 fields, "
        "not 9: '0, Some GPU, 1024'"
    )


def test_an_empty_gpu_list_is_no_gpu(capsys, monkeypatch, tmp_path):
    case = write_case(tmp_path / "empty", {"query-gpu.csv": ""})
    result = gpu_facts_of(capsys, monkeypatch, case)
    assert (result["state"], result["gpus"]) == ("no_gpu", [])


def test_a_later_command_failing_gives_its_state(capsys, monkeypatch, tmp_path):
    """The GPU query answered, then the driver went away: the state of the failing command, no half facts."""
    files = {name: (FIXTURES / "h100-1" / name).read_text() for name in ("query-gpu.csv", "header.txt")}
    files |= {"query-compute-apps.csv": "No devices were found\n", "query-compute-apps.rc": "6\n"}
    result = gpu_facts_of(capsys, monkeypatch, write_case(tmp_path / "flaky", files))
    assert (result["state"], result["gpus"], result["driver_version"]) == ("no_gpu", [], None)


def test_documentation_matches_argument_spec():
    documented = yaml.safe_load(gpu_facts.DOCUMENTATION)
    spec = gpu_facts.argument_spec()
    assert sorted(documented["options"]) == sorted(spec)
    for name, option in spec.items():
        doc = documented["options"][name]
        assert (doc["type"], doc.get("default")) == (option["type"], option.get("default")), name
    assert documented["attributes"]["check_mode"]["support"] == "full"
    assert "facts" in yaml.safe_load(ModuleDocFragment.FACTS)["attributes"]
    returned = yaml.safe_load(gpu_facts.RETURN)
    assert set(returned) == RESULT_KEYS - {"changed"}
    assert set(returned["gpus"]["contains"]) == set(H100)


# ---------------------------------------------------------------------------------------------------------
# Parsing and classifying on their own


def test_commands_are_the_documented_ones():
    assert smi.command("query-gpu") == [
        "nvidia-smi",
        "--query-gpu=index,name,uuid,memory.total,memory.used,memory.free,driver_version,compute_cap,persistence_mode",
        "--format=csv,noheader,nounits",
    ]
    assert smi.command("query-compute-apps", "/usr/bin/nvidia-smi") == [
        "/usr/bin/nvidia-smi",
        "--query-compute-apps=gpu_uuid,pid,process_name,used_memory",
        "--format=csv,noheader,nounits",
    ]
    assert smi.command("header") == ["nvidia-smi"]
    for name in smi.COMMANDS:
        assert " ".join(smi.COMMANDS[name]) in gpu_facts.DOCUMENTATION.replace("\n    ", ""), name


def test_fields_a_device_cannot_report_are_none():
    line = "0, NVIDIA A100-SXM4-40GB MIG 1g.5gb, [N/A], 40960, [N/A], [Not Supported], 550.54.15, 8.0, [N/A]\n"
    (gpu,) = smi.parse_gpus(line)
    assert gpu == {
        "index": 0,
        "name": "NVIDIA A100-SXM4-40GB MIG 1g.5gb",
        "uuid": None,
        "memory_total_mib": 40960,
        "memory_used_mib": None,
        "memory_free_mib": None,
        "driver_version": "550.54.15",
        "compute_capability": "8.0",
        "persistence_mode": None,
        "processes": [],
    }


def test_compute_apps_with_commas_missing_memory_and_the_no_process_line():
    text = "GPU-aa, 101, /opt/app/bin/serve,model=a, 2048\nGPU-bb, 102, python3, [N/A]\nNo running processes found\n\n"
    assert smi.parse_compute_apps(text) == [
        {"gpu_uuid": "GPU-aa", "pid": 101, "process_name": "/opt/app/bin/serve,model=a", "used_memory_mib": 2048},
        {"gpu_uuid": "GPU-bb", "pid": 102, "process_name": "python3", "used_memory_mib": None},
    ]
    with pytest.raises(ValueError, match="not 4 fields: 'garbage, 1'"):
        smi.parse_compute_apps("garbage, 1\n")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ((FIXTURES / "rtx5000-1" / "header.txt").read_text(), "12.2"),
        (
            "Driver Version                    : 550.127.05\nCUDA Version                      : 12.4\n",
            "12.4",
        ),
        ("| NVIDIA-SMI 580.95.05   Driver Version: 580.95.05   CUDA Version: 13.0     |\n", "13.0"),
        ("| NVIDIA-SMI 550.90.07   Driver Version: 550.90.07   CUDA Version: N/A      |\n", None),
    ],
    ids=["header-535", "q", "header-580", "none"],
)
def test_cuda_version(text, version):
    assert smi.parse_cuda_version(text) == version


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "state"),
    [
        (18, "Failed to initialize NVML: Driver/library version mismatch\n", "", "driver_mismatch"),
        (255, "", "Failed to initialize NVML: Driver/library version mismatch\n", "driver_mismatch"),
        (9, "", "", "not_loaded"),
        (6, "No devices were found\n", "", "no_gpu"),
        (255, "Failed to initialize NVML: No supported GPUs were found\n", "", "no_gpu"),
        (127, "", "sh: 1: nvidia-smi: not found\n", "no_driver"),
        (15, "Unable to determine the device handle for GPU 0000:3B:00.0: GPU is lost.\n", "", "error"),
    ],
)
def test_classify_failure(rc, stdout, stderr, state):
    assert smi.classify_failure(rc, stdout, stderr).state == state
