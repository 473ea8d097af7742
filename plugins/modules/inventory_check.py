#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.inventory_check documentation: an action that runs on the controller only.

The work is done by plugins/action/inventory_check.py with plugins/plugin_utils/inventory_check.py; this
file holds the documentation ansible-doc shows, as ansible.builtin.debug's module file does.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: inventory_check
author: labai
version_added: "0.1.0"
short_description: Check a host's inventory variables for the LLM stack without contacting the host
description:
  - "Checks, on the controller only, every inventory variable the phases of the stack read for the host, and
    fails with every problem at once, one line each, C(<variable or location>: <what is wrong>; <how to fix it>)."
  - "The model catalog C(llm_stack_catalog), through the P(labai.llm_stack.plan#filter) filter's checks, against
    the hosts of the group C(llm_hosts)."
  - "The secrets: C(llm_stack_litellm_master_key) is required and is C(sk-) followed by at least 32 characters of
    C(A-Z a-z 0-9 _ -); C(llm_stack_redis_password) is required (16 characters or more) while the gateway's cache
    C(litellm_cache) is on; C(llm_stack_vllm_api_key) and C(llm_stack_llamacpp_api_key) are required on every
    host that runs a vLLM or llama.cpp server and on every gateway host that sends requests to one;
    C(llm_stack_hf_token) is optional. A secret that is set is non-empty and holds no whitespace or control
    character. No message shows a secret's value."
  - "The files the roles copy from the controller: a vLLM model's C(vllm.model_src) is a directory there, a
    llama.cpp model's C(llamacpp.model_src) a regular file. C(ollama_archive_checksum) (when the catalog has an
    Ollama model) and C(llamacpp_native_source_checksum) (when a llama.cpp model uses the native flavor) are
    C(sha256:) and 64 hex digits."
  - "Every role setting C(<role>_*) against the role's C(meta/argument_specs.yml) (name, type, elements,
    choices; an unknown name gets a suggestion), and what the roles' own asserts check (a valid account name,
    Redis not on every interface, pip options, environment variable names, ports)."
  - "Variables the playbooks set themselves (C(vllm_api_key), C(litellm_master_key), C(<role>_defer_restart)
    and others) and settings that moved into the catalog (C(llm_stack_ready_timeout), C(<role>_bind_address))
    are refused with the variable to set instead."
  - Each variable is templated on its own; one whose template fails is one problem naming it.
  - Never contacts the host; nothing runs there and no facts are gathered.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.conn
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: It only reads variables and files on the controller.
  connection:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: all
options: {}
notes:
  - Phase 1 (C(playbooks/preflight.yml)) runs it first on every host, with that host's variables.
  - Only names with a role's prefix and the C(llm_stack_*) variables above are read; Ansible's own
    variables are not.
seealso:
  - plugin: labai.llm_stack.plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Check the inventory before any host is contacted
  labai.llm_stack.inventory_check:
"""

RETURN = r"""
msg:
  description:
    - On failure C(<N> problem(s) in the inventory for <host>:) and one C(- <problem>) line per problem.
    - Otherwise a one-line summary.
  returned: always
  type: str
  sample: "1 problem(s) in the inventory for gpu01:\n- llm_stack_litellm_master_key: not set; set the gateway's
    master key in an ansible-vault file: 'sk-' followed by at least 32 characters of A-Z, a-z, 0-9, '_' and '-'
    (generate one with: python3 -c \"import secrets; print('sk-' + secrets.token_urlsafe(32))\")"
problems:
  description: Every problem found, one line each; empty when the inventory is valid.
  returned: always
  type: list
  elements: str
  sample:
    - "vllm_flavour: not a setting of the vllm role; did you mean vllm_flavor?"
"""
