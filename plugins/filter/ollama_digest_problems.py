# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The labai.llm_stack.ollama_digest_problems filter: the models Ollama holds that are not the ones the catalog pins."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: ollama_digest_problems
author: labai
version_added: "1.0.0"
short_description: Compare the digests Ollama lists with the ones the catalog pins
description:
  - Takes the answer of Ollama's C(GET /api/tags) and the C(digests) of the host's Ollama record in the plan
    (each catalog model with C(ollama.digest)) and returns one line per pinned model that Ollama lists with
    another digest, or does not list at all. An empty list means every pinned model is the one the catalog
    names.
  - Digests compare as C(/api/tags) gives them, 64 lowercase hex digits; a C(sha256:) prefix is ignored.
positional: pins, server
options:
  _input:
    description: The JSON body of C(GET /api/tags), a mapping with C(models), each with C(name) and C(digest).
    type: dict
    required: true
  pins:
    description: The record's C(digests), each with C(model) (the name Ollama lists), C(digest) and C(name)
      (the catalog's public name).
    type: list
    elements: dict
    required: true
  server:
    description: Where the Ollama server listens (the record's C(probe_url)), for the C(ollama rm) in the fix.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Fail when a model is not the one the catalog pins
  vars:
    problems: "{{ __ollama_tags.json | labai.llm_stack.ollama_digest_problems(ollama_instances[0].digests) }}"
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('\n') }}"
"""

RETURN = r"""
_value:
  description: One line per pinned model Ollama lists with another digest or not at all, naming the model,
    both digests and the fix.
  type: list
  elements: str
"""


def _hex(digest: object) -> str:
    return str(digest).removeprefix("sha256:").lower()


def ollama_digest_problems(tags: Mapping, pins: list, server: str = "") -> list[str]:
    if not isinstance(tags, Mapping) or not isinstance(tags.get("models"), list):
        raise AnsibleFilterError("ollama_digest_problems: expected the answer of /api/tags, a mapping with models")
    listed = {
        str(model["name"]): _hex(model["digest"])
        for model in tags["models"]
        if isinstance(model, Mapping) and "name" in model and "digest" in model
    }
    ollama = f"OLLAMA_HOST={server} ollama" if server else "ollama"
    problems = []
    for pin in pins:
        model, pinned, name = str(pin["model"]), _hex(pin["digest"]), pin["name"]
        catalog = f"llm_stack_catalog's ollama.digest of {name} is {pinned}"
        if model not in listed:
            what = f"{model}: Ollama does not list it, so its digest cannot be compared: {catalog}"
            fix = "check that the pull succeeded (GET /api/tags must list the model) and deploy again"
        elif listed[model] != pinned:
            what = f"{model}: Ollama lists digest {listed[model]}, but {catalog}"
            fix = (
                f"remove the model ({ollama} rm {model}, as the service account) and deploy again to pull it anew, "
                f"or correct ollama.digest of {name} if {listed[model]} is the digest to trust"
            )
        else:
            continue
        problems.append(f"{what}; {fix}")
    return problems


class FilterModule:
    def filters(self) -> dict:
        return {"ollama_digest_problems": ollama_digest_problems}
