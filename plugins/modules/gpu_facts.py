#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.gpu_facts module: the NVIDIA GPUs of a host as nvidia-smi reports them, as facts."""

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_facts
author: labai
version_added: "0.1.0"
short_description: Read a host's NVIDIA GPUs, their memory and the processes holding it, from nvidia-smi
description:
  - "Runs C(nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,memory.free,driver_version,compute_cap,
    persistence_mode --format=csv,noheader,nounits), C(nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,
    used_memory --format=csv,noheader,nounits) and plain C(nvidia-smi) (for the CUDA version of its header), and
    returns per GPU its index, name, UUID, memory total, used and free in MiB, driver version, compute
    capability, persistence mode and the processes holding its memory."
  - "Tells apart the states nvidia-smi can be in, each with its fix: V(no_driver) (no nvidia-smi), V(not_loaded)
    (it cannot communicate with the driver: the kernel module is not loaded), V(driver_mismatch) (C(Failed to
    initialize NVML: Driver/library version mismatch) after a driver upgrade without a reboot), V(no_gpu)
    (C(No devices were found)) and V(ok)."
  - Any other failure of nvidia-smi, or output it cannot read, fails the module whatever O(required) says.
  - Only reads; it never reports C(changed).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: nvidia-smi's queries change nothing, so the module runs them in check mode too.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
options:
  nvidia_smi:
    description:
      - The nvidia-smi to run, a name looked up in E(PATH) (and the usual C(sbin) directories) or a path.
    type: str
    default: nvidia-smi
  required:
    description:
      - V(true) fails the module in every state but V(ok), with the state's message.
      - V(false) returns the state and its message with RV(gpus) empty, so that a play can decide, for example
        to skip a host that has no GPU.
    type: bool
    default: false
notes:
  - The same structure is returned at the top level and as the fact C(gpu_facts).
  - Memory figures are nvidia-smi's MiB. A GPU's used and free memory do not add up to its total; the driver
    reserves the rest.
seealso:
  - module: labai.llm_stack.inventory_check
"""

EXAMPLES = r"""
- name: Read the GPUs
  labai.llm_stack.gpu_facts:

- name: Show the free memory of GPU 0
  ansible.builtin.debug:
    msg: "{{ ansible_facts.gpu_facts.gpus[0].memory_free_mib }} MiB free"
  when: ansible_facts.gpu_facts.state == 'ok'

- name: A host that must have a working GPU (fails with the fix otherwise)
  labai.llm_stack.gpu_facts:
    required: true
  register: __gpus

- name: The nvidia-smi test double replaying a recorded case
  labai.llm_stack.gpu_facts:
    nvidia_smi: /usr/local/bin/nvidia-smi
  environment:
    NVIDIA_SMI_CASE: /srv/fixtures/nvidia_smi/a100-2
"""

RETURN = r"""
state:
  description:
    - V(ok), V(no_driver), V(not_loaded), V(driver_mismatch) or V(no_gpu).
    - V(error) when nvidia-smi failed in another way; the module then fails.
  returned: always
  type: str
  sample: ok
msg:
  description: The GPUs in one line when RV(state) is V(ok); otherwise what is wrong and how to fix it.
  returned: always
  type: str
  sample: "1 GPU(s), driver 535.183.01, CUDA 12.2: GPU 0 Quadro RTX 5000 16384 MiB (16122 MiB free)"
driver_version:
  description: The NVIDIA driver's version; V(null) unless RV(state) is V(ok).
  returned: always
  type: str
  sample: 535.183.01
cuda_version:
  description: The highest CUDA version the driver supports, from nvidia-smi's header; V(null) when unknown.
  returned: always
  type: str
  sample: "12.2"
gpus:
  description: One entry per GPU, by index; empty unless RV(state) is V(ok). A value the GPU cannot report is V(null).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: nvidia-smi's index of the GPU.
      type: int
      sample: 0
    name:
      description: The product name.
      type: str
      sample: Quadro RTX 5000
    uuid:
      description: The GPU's UUID, as C(CUDA_VISIBLE_DEVICES) accepts it.
      type: str
      sample: GPU-2f0e1b7c-93d4-6a58-c1e2-7d4b9a0f3e16
    memory_total_mib:
      description: Memory in all, MiB.
      type: int
      sample: 16384
    memory_used_mib:
      description: Memory in use, MiB.
      type: int
      sample: 1
    memory_free_mib:
      description: Memory free, MiB.
      type: int
      sample: 16122
    driver_version:
      description: The driver's version.
      type: str
      sample: 535.183.01
    compute_capability:
      description: The CUDA compute capability, major.minor.
      type: str
      sample: "7.5"
    persistence_mode:
      description: Whether persistence mode is on.
      type: bool
      sample: false
    processes:
      description: The compute processes holding memory on this GPU, each C(pid), C(process_name), C(used_memory_mib).
      type: list
      elements: dict
      sample: [{pid: 48213, process_name: /srv/llm/vllm/bin/python3, used_memory_mib: 72296}]
ansible_facts:
  description: The facts.
  returned: always
  type: dict
  contains:
    gpu_facts:
      description: RV(state), RV(msg), RV(driver_version), RV(cuda_version) and RV(gpus), as above.
      type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.labai.llm_stack.plugins.module_utils._nvidia_smi import (
    ERROR,
    OK,
    collect,
    missing_binary,
    no_facts,
)


class GpuFacts:
    """Find nvidia-smi, run its queries, and return the facts or the state it is in."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def find_binary(self) -> str | None:
        name = self.params["nvidia_smi"]
        if "/" in name:
            return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
        return self.module.get_bin_path(name)

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        return self.module.run_command(argv, check_rc=False)

    def facts(self) -> dict:
        binary = self.find_binary()
        if binary is None:
            return no_facts(missing_binary(self.params["nvidia_smi"]))
        try:
            return collect(self.run_command, binary)
        except ValueError as err:
            self.module.fail_json(msg=f"{binary} answered what this module cannot read: {err}")

    def run(self) -> None:
        facts = self.facts()
        result = {"changed": False, **facts, "ansible_facts": {"gpu_facts": facts}}
        if facts["state"] == ERROR or (facts["state"] != OK and self.params["required"]):
            self.module.fail_json(**result)
        self.module.exit_json(**result)


def argument_spec() -> dict:
    """The options, as DOCUMENTATION describes them (a unit test keeps the two in step)."""
    return {
        "nvidia_smi": {"type": "str", "default": "nvidia-smi"},
        "required": {"type": "bool", "default": False},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    GpuFacts(module).run()


if __name__ == "__main__":
    main()
