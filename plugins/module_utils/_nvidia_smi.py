# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What nvidia-smi says about a host's GPUs, read into data, and what it means when it cannot answer.

Standard library only: scripts/gpu-check.sh imports this file by its path on GPU machines without Ansible.

nvidia-smi
    ``COMMANDS`` are the argument lists the labai.llm_stack.gpu_facts module runs (the test double
    tests/doubles/nvidia-smi answers the same ones). The field names are those of ``nvidia-smi
    --help-query-gpu`` and ``--help-query-compute-apps``; with ``--format=csv,noheader,nounits`` a field a
    device cannot report reads ``[N/A]`` or ``[Not Supported]`` (read here as ``None``). The CUDA version is the
    ``CUDA Version: 12.4`` of plain nvidia-smi's header, which every driver branch prints.

    nvidia-smi's exit status is NVML's return code (nvidia-smi(1), RETURN VALUE; ``nvmlReturn_t`` in nvml.h):
    6 NOT_FOUND ("No devices were found"), 9 DRIVER_NOT_LOADED ("NVIDIA-SMI has failed because it couldn't
    communicate with the NVIDIA driver"), 18 LIB_RM_VERSION_MISMATCH ("Failed to initialize NVML:
    Driver/library version mismatch", then "NVML library version: ..."). It writes these messages to stdout.
    ``classify_failure`` reads the message first and the status second, and names the fix.

    The VRAM estimate and the fit check that read these facts are in _vram.py.
"""

from __future__ import annotations

import re

CSV_FORMAT = "--format=csv,noheader,nounits"
GPU_FIELDS = (
    "index",
    "name",
    "uuid",
    "memory.total",
    "memory.used",
    "memory.free",
    "driver_version",
    "compute_cap",
    "persistence_mode",
)
APP_FIELDS = ("gpu_uuid", "pid", "process_name", "used_memory")
COMMANDS = {
    "query-gpu": ("--query-gpu=" + ",".join(GPU_FIELDS), CSV_FORMAT),
    "query-compute-apps": ("--query-compute-apps=" + ",".join(APP_FIELDS), CSV_FORMAT),
    "header": (),
}
FIXTURE_FILES = {"query-gpu": "query-gpu.csv", "query-compute-apps": "query-compute-apps.csv", "header": "header.txt"}

OK = "ok"
NO_DRIVER = "no_driver"
NOT_LOADED = "not_loaded"
DRIVER_MISMATCH = "driver_mismatch"
NO_GPU = "no_gpu"
ERROR = "error"
STATES = (OK, NO_DRIVER, NOT_LOADED, DRIVER_MISMATCH, NO_GPU)

INSTALL_HINT = "install the NVIDIA driver, e.g. with the role labai.llm_stack.nvidia_driver"


class NvidiaSmiFailure(Exception):
    """nvidia-smi could not answer; ``state`` says why (one of STATES, or ERROR when unknown)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


def command(name: str, binary: str = "nvidia-smi") -> list[str]:
    """The argument list of one of COMMANDS."""
    return [binary, *COMMANDS[name]]


# -- failures ------------------------------------------------------------------------------------------------


def missing_binary(binary: str) -> NvidiaSmiFailure:
    """nvidia-smi is not installed: no driver."""
    return NvidiaSmiFailure(NO_DRIVER, f"{binary} was not found: the NVIDIA driver is not installed; {INSTALL_HINT}.")


def classify_failure(rc: int, stdout: str, stderr: str) -> NvidiaSmiFailure:
    """What a failed nvidia-smi run means, with the fix."""
    said = " ".join(line.strip() for line in f"{stdout}\n{stderr}".splitlines() if line.strip())
    if "version mismatch" in said or rc == 18:
        return NvidiaSmiFailure(
            DRIVER_MISMATCH,
            f"nvidia-smi: {said or f'exit {rc}'}: the loaded nvidia kernel module and the driver's user-space "
            "library are different versions, as after a driver upgrade without a reboot; reboot, or unload and "
            "reload the nvidia kernel modules (modprobe -r nvidia_uvm nvidia_drm nvidia_modeset nvidia, then "
            "modprobe nvidia).",
        )
    if "couldn't communicate with the NVIDIA driver" in said or rc == 9:
        return NvidiaSmiFailure(
            NOT_LOADED,
            "nvidia-smi could not communicate with the NVIDIA driver: the nvidia kernel module is not loaded "
            "(not built for the running kernel, nouveau holding the GPU, an unsigned module under Secure Boot, or "
            f"no reboot since the install); load it with modprobe nvidia, or {INSTALL_HINT} and reboot.",
        )
    if "No devices were found" in said or "No supported GPUs were found" in said or rc == 6:
        return NvidiaSmiFailure(
            NO_GPU,
            f"nvidia-smi found no NVIDIA GPU ({said or f'exit {rc}'}): check that the GPU is present "
            "(lspci -d 10de:) and passed through to this machine, and that the driver supports it.",
        )
    if rc == 127:
        return NvidiaSmiFailure(NO_DRIVER, f"nvidia-smi was not found: {INSTALL_HINT}.")
    return NvidiaSmiFailure(ERROR, f"nvidia-smi failed with exit status {rc}: {said or '(no output)'}")


# -- parsing -------------------------------------------------------------------------------------------------


def field(text: str) -> str | None:
    """One CSV field; ``None`` for what the device cannot report ([N/A], [Not Supported], ...)."""
    text = text.strip()
    if not text or text == "N/A" or (text.startswith("[") and text.endswith("]")):
        return None
    return text


def number(text: str) -> int | None:
    """A whole number (MiB, a pid), or ``None``."""
    value = field(text)
    return None if value is None else int(value)


def persistence(text: str) -> bool | None:
    value = field(text)
    return {"Enabled": True, "Disabled": False}.get(value) if value else None


def parse_gpus(text: str) -> list[dict]:
    """``--query-gpu`` output: one dict per GPU, without processes yet."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [part.strip() for part in line.split(",")]
        if len(fields) != len(GPU_FIELDS):
            raise ValueError(f"nvidia-smi --query-gpu answered a line of {len(fields)} fields, not 9: {line!r}")
        index, name, uuid, total, used, free, driver, capability, persistence_mode = fields
        gpus.append(
            {
                "index": int(index),
                "name": field(name),
                "uuid": field(uuid),
                "memory_total_mib": number(total),
                "memory_used_mib": number(used),
                "memory_free_mib": number(free),
                "driver_version": field(driver),
                "compute_capability": field(capability),
                "persistence_mode": persistence(persistence_mode),
                "processes": [],
            }
        )
    return gpus


def parse_compute_apps(text: str) -> list[dict]:
    """``--query-compute-apps`` output: one dict per process holding GPU memory (its name may hold commas)."""
    apps = []
    for line in text.splitlines():
        if not line.strip() or line.strip() == "No running processes found":
            continue
        parts = line.split(",", 2)
        if len(parts) != 3 or "," not in parts[2]:
            raise ValueError(f"nvidia-smi --query-compute-apps answered a line that is not 4 fields: {line!r}")
        name, memory = parts[2].rsplit(",", 1)
        apps.append(
            {
                "gpu_uuid": field(parts[0]),
                "pid": number(parts[1]),
                "process_name": field(name),
                "used_memory_mib": number(memory),
            }
        )
    return apps


def parse_cuda_version(text: str) -> str | None:
    """``CUDA Version: 12.4`` from plain nvidia-smi's header (or ``nvidia-smi -q``); ``None`` without one."""
    found = re.search(r"CUDA Version\s*:\s*([0-9]+(?:\.[0-9]+)*)", text)
    return found.group(1) if found else None


def attach_processes(gpus: list[dict], apps: list[dict]) -> list[dict]:
    """Each GPU's ``processes``, matched by UUID."""
    for gpu in gpus:
        gpu["processes"] = [
            {key: app[key] for key in ("pid", "process_name", "used_memory_mib")}
            for app in apps
            if app["gpu_uuid"] == gpu["uuid"]
        ]
    return gpus


# -- the facts -----------------------------------------------------------------------------------------------


def answer(run, name: str, binary: str) -> str:
    """The stdout of one of COMMANDS; a failed run raises NvidiaSmiFailure."""
    rc, stdout, stderr = run(command(name, binary))
    if rc != 0:
        raise classify_failure(rc, stdout, stderr)
    return stdout


def summary(gpus: list[dict], driver_version: str | None, cuda_version: str | None) -> str:
    listed = ", ".join(
        f"GPU {gpu['index']} {gpu['name']} {gpu['memory_total_mib']} MiB ({gpu['memory_free_mib']} MiB free)"
        for gpu in gpus
    )
    return f"{len(gpus)} GPU(s), driver {driver_version}, CUDA {cuda_version}: {listed}"


def no_facts(failure: NvidiaSmiFailure) -> dict:
    return {"state": failure.state, "msg": str(failure), "gpus": [], "driver_version": None, "cuda_version": None}


def collect(run, binary: str = "nvidia-smi") -> dict:
    """Run COMMANDS through ``run(argv) -> (rc, stdout, stderr)``; the facts, or the state nvidia-smi is in.

    A GPU query that answers nothing is ``no_gpu``; output that cannot be read raises ValueError.
    """
    try:
        gpus = parse_gpus(answer(run, "query-gpu", binary))
        if not gpus:
            raise classify_failure(6, "No devices were found", "")
        attach_processes(gpus, parse_compute_apps(answer(run, "query-compute-apps", binary)))
        cuda_version = parse_cuda_version(answer(run, "header", binary))
    except NvidiaSmiFailure as failure:
        return no_facts(failure)
    driver_version = gpus[0]["driver_version"]
    return {
        "state": OK,
        "msg": summary(gpus, driver_version, cuda_version),
        "gpus": gpus,
        "driver_version": driver_version,
        "cuda_version": cuda_version,
    }
