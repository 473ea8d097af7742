# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nvidia-smi test double, run as the lab hosts run it (by dash, a POSIX sh), against the recorded cases."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import ansible
import pytest
from ansible_collections.labai.llm_stack.plugins.module_utils._nvidia_smi import COMMANDS, FIXTURE_FILES, command

TESTS = Path(__file__).resolve().parents[1]
DOUBLE = TESTS / "doubles" / "nvidia-smi" / "nvidia-smi"
FIXTURES = TESTS / "fixtures" / "nvidia_smi"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
PREFLIGHT = ["--query-gpu=index,name,memory.total,memory.used", "--format=csv,noheader,nounits"]
SHELL = shutil.which("dash") or "/bin/sh"
STATES = {"mismatch": "driver_mismatch", "no-driver": "not_loaded", "no-gpu": "no_gpu"}


def nvidia_smi(*args: str, case: Path | None = None, case_file: Path | None = None, **env: str):
    """Run the double with only the environment given (no case, no LAB_GPUS unless set)."""
    environment = {"PATH": "/usr/bin:/bin", "NVIDIA_SMI_CASE_FILE": str(case_file or "/nonexistent"), **env}
    if case is not None:
        environment["NVIDIA_SMI_CASE"] = str(case)
    return subprocess.run(
        [SHELL, str(DOUBLE), *args], env=environment, capture_output=True, text=True, timeout=10, check=False
    )


def recorded(case: str, name: str) -> tuple[str, int]:
    """The stdout and exit status a case recorded for one command."""
    directory = FIXTURES / case
    rc = directory / f"{name}.rc"
    return (directory / FIXTURE_FILES[name]).read_text(), int(rc.read_text()) if rc.exists() else 0


def test_every_case_records_every_command():
    assert {"h100-1", "rtx5000-1", "a100-2", "mismatch", "no-driver", "no-gpu"} <= set(CASES)
    for case in CASES:
        for name in COMMANDS:
            assert (FIXTURES / case / FIXTURE_FILES[name]).is_file(), (case, name)


def test_double_is_a_named_test_double():
    header = DOUBLE.read_text().splitlines()
    assert header[0] == "#!/bin/sh"
    assert header[1].startswith("# TEST DOUBLE of NVIDIA's nvidia-smi")


def test_preflight_query_without_a_case_answers_as_before():
    result = nvidia_smi(*PREFLIGHT)
    assert (result.returncode, result.stdout, result.stderr) == (0, "0, NVIDIA H100 80GB HBM3, 81559, 1024\n", "")


def test_lab_gpus_sets_the_number_of_gpus():
    result = nvidia_smi(*PREFLIGHT, LAB_GPUS="3")
    assert result.stdout.splitlines() == [f"{i}, NVIDIA H100 80GB HBM3, 81559, 1024" for i in range(3)]
    gpus = nvidia_smi(*command("query-gpu")[1:], LAB_GPUS="2").stdout.splitlines()
    assert [line.split(", ")[:3] for line in gpus] == [
        ["0", "NVIDIA H100 80GB HBM3", "GPU-5a3c9e21-7f4b-4d2e-9c1a-0b8e6d4f2a00"],
        ["1", "NVIDIA H100 80GB HBM3", "GPU-5a3c9e21-7f4b-4d2e-9c1a-0b8e6d4f2a01"],
    ]
    table = nvidia_smi(LAB_GPUS="2").stdout
    assert table.count("NVIDIA H100 80GB HBM3          On  |") == 2
    assert "00000000:19:00.0" in table and "00000000:3B:00.0" in table


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_built_in_answer_is_the_recorded_h100_case(name):
    stdout, rc = recorded("h100-1", name)
    result = nvidia_smi(*command(name)[1:])
    assert (result.returncode, result.stdout, result.stderr) == (rc, stdout, "")


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("case", CASES)
def test_a_case_is_replayed(case, name):
    stdout, rc = recorded(case, name)
    result = nvidia_smi(*command(name)[1:], case=FIXTURES / case, LAB_GPUS="4")
    assert (result.returncode, result.stdout, result.stderr) == (rc, stdout, "")


@pytest.mark.parametrize("case", CASES)
def test_the_preflight_query_is_cut_from_the_case(case):
    stdout, rc = recorded(case, "query-gpu")
    result = nvidia_smi(*PREFLIGHT, case=FIXTURES / case)
    if rc:
        assert (result.returncode, result.stdout) == (rc, stdout)
    else:
        expected = [", ".join(line.split(", ")[i] for i in (0, 1, 3, 4)) for line in stdout.splitlines()]
        assert (result.returncode, result.stdout.splitlines()) == (0, expected)


def test_preflight_of_the_two_gpu_case():
    result = nvidia_smi(*PREFLIGHT, case=FIXTURES / "a100-2")
    assert result.stdout == "0, NVIDIA A100-SXM4-80GB, 81920, 1\n1, NVIDIA A100-SXM4-80GB, 81920, 72309\n"


def test_the_case_file_names_the_case(tmp_path):
    case_file = tmp_path / "case"
    case_file.write_text(f"{FIXTURES / 'rtx5000-1'}\n")
    result = nvidia_smi(*PREFLIGHT, case_file=case_file)
    assert result.stdout == "0, Quadro RTX 5000, 16384, 1\n"
    overridden = nvidia_smi(*PREFLIGHT, case=FIXTURES / "a100-2", case_file=case_file)
    assert overridden.stdout.startswith("0, NVIDIA A100-SXM4-80GB")


def test_stderr_is_replayed(tmp_path):
    case = tmp_path / "warned"
    case.mkdir()
    (case / "query-gpu.csv").write_text("")
    (case / "header.txt").write_text("")
    (case / "header.stderr").write_text("WARNING: infoROM is corrupted at gpu 0000:19:00.0\n")
    result = nvidia_smi(case=case)
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "",
        "WARNING: infoROM is corrupted at gpu 0000:19:00.0\n",
    )


def test_a_case_without_the_gpu_query_is_refused(tmp_path):
    result = nvidia_smi(*PREFLIGHT, case=tmp_path)
    assert (result.returncode, result.stderr) == (
        2,
        f"nvidia-smi test double: {tmp_path} has no recorded query-gpu.csv\n",
    )


@pytest.mark.parametrize("args", [["-q"], ["--query-gpu=name", "--format=csv"], ["-L"]])
def test_other_commands_are_refused(args):
    result = nvidia_smi(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("nvidia-smi test double: only the queries of gpu_facts and pre-flight")


# ---------------------------------------------------------------------------------------------------------
# scripts/gpu-check.sh, with the double as the real nvidia-smi: what it records is the case it was shown

GPU_CHECK = TESTS.parent / "scripts" / "gpu-check.sh"
VENV_BIN = Path(sys.executable).parent


def gpu_check(tmp_path: Path, *args: str, path: str, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": path, "HOME": str(tmp_path), "NVIDIA_SMI_CASE_FILE": "/nonexistent", **env}
    return subprocess.run(
        ["bash", str(GPU_CHECK), *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def double_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").symlink_to(DOUBLE)
    return bin_dir


@pytest.mark.parametrize("case", CASES)
def test_gpu_check_records_what_nvidia_smi_answers(tmp_path, double_bin, case):
    dest = tmp_path / "fixtures" / f"recorded-{case}"
    out = tmp_path / "out"
    out.mkdir()
    path = f"{double_bin}:{VENV_BIN}:/usr/bin:/bin"
    result = gpu_check(tmp_path, str(dest), path=path, NVIDIA_SMI_CASE=str(FIXTURES / case), OUT=str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in (FIXTURES / case).iterdir())
    for recorded_file in dest.iterdir():
        assert recorded_file.read_text() == (FIXTURES / case / recorded_file.name).read_text(), recorded_file.name
    assert sorted(p.name for p in out.iterdir()) == ["fixture.tar", "gpu-check.log"]
    with tarfile.open(out / "fixture.tar") as tar:
        assert sorted(tar.getnames())[0] == f"recorded-{case}"
    log = (out / "gpu-check.log").read_text()
    assert log == result.stdout
    facts = json.loads(log.split("== labai.llm_stack.gpu_facts against")[1].split("\n", 1)[1].split("\n== ")[0])
    assert facts["state"] == STATES.get(case, "ok")
    if facts["state"] == "ok":
        fit = log.split("== VRAM fit on the recorded GPU 0\n")[1]
        assert fit.startswith("qwen-coder: Qwen2.5-Coder-7B-Instruct-AWQ needs about 7.7 GB to start (weights 5.3,")
    else:
        assert facts["gpus"] == [] and facts["msg"]


def test_gpu_check_on_the_seed_gpu_prints_the_fit(tmp_path, double_bin):
    path = f"{double_bin}:{VENV_BIN}:/usr/bin:/bin"
    result = gpu_check(tmp_path, str(tmp_path / "rec"), path=path, NVIDIA_SMI_CASE=str(FIXTURES / "rtx5000-1"))
    fit = result.stdout.split("== VRAM fit on the recorded GPU 0\n")[1].splitlines()
    assert fit[0].endswith(
        "GPU 0 Quadro RTX 5000 has 16 GB, 13.6 GB usable at gpu_memory_utilization 0.85, 15.7 GB free: fits"
    )
    assert fit[1].startswith("  warning: qwen-coder: 16 sequences of 8192 tokens need about 7 GB of KV cache")


def test_gpu_check_without_nvidia_smi_fails(tmp_path):
    result = gpu_check(tmp_path, str(tmp_path / "rec"), path=f"{VENV_BIN}:/usr/bin:/bin")
    assert (result.returncode, result.stderr) == (1, "gpu-check: nvidia-smi not found: install the NVIDIA driver\n")
    assert not (tmp_path / "rec").exists()


@pytest.mark.skipif(
    not Path("/usr/bin/python3").exists()
    or subprocess.run(["/usr/bin/python3", "-c", "import ansible"], capture_output=True, check=False).returncode == 0,
    reason="needs a python3 that cannot import ansible",
)
def test_gpu_check_with_a_copied_ansible_package(tmp_path, double_bin):
    """A GPU machine without Ansible: the module runs from a copy of the ansible package (ANSIBLE_PKG_DIR)."""
    package = tmp_path / "ansible-pkg"
    package.mkdir()
    (package / "ansible").symlink_to(Path(ansible.__file__).parent)
    path = f"{double_bin}:/usr/bin:/bin"
    case = str(FIXTURES / "a100-2")
    result = gpu_check(tmp_path, str(tmp_path / "rec"), path=path, NVIDIA_SMI_CASE=case, ANSIBLE_PKG_DIR=str(package))
    assert result.returncode == 0, result.stderr
    assert '"state": "ok"' in result.stdout and '"cuda_version": "12.4"' in result.stdout
    without = gpu_check(tmp_path, str(tmp_path / "rec2"), path=path, NVIDIA_SMI_CASE=case)
    assert without.returncode == 0
    assert "python3 cannot import ansible: set ANSIBLE_PKG_DIR to a copy of it" in without.stdout
