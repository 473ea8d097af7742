# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Phase 1's inventory check (plugins/plugin_utils/inventory_check.py): every check, messages word for word."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.labai.llm_stack.plugins.plugin_utils import inventory_check
from ansible_collections.labai.llm_stack.plugins.plugin_utils.inventory_check import (
    MOVED,
    PLAYBOOK_SET,
    inventory_problems,
    relevant_names,
)
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import CatalogError, build_plan
from tls_certificates import issue

TOP = Path(__file__).resolve().parents[2]
ROLES = TOP / "roles"
INVENTORIES = TOP / "inventories"
HOST = "gpu01"
CHECKSUM = "sha256:" + "0123456789abcdef" * 4
MASTER_KEY = "sk-unit-test-master-key-0123456789abcdef"
REDIS_PASSWORD = "unit-test-redis-password"
VLLM_KEY = "unit-test-vllm-key"
CPP_KEY = "unit-test-cpp-key"
MK_FIX = (
    "set the gateway's master key in an ansible-vault file: 'sk-' followed by at least 32 characters of A-Z, a-z, "
    """0-9, '_' and '-' (generate one with: python3 -c "import secrets; print('sk-' + secrets.token_urlsafe(32))")"""
)
KEY_FIX = (
    "set the key in an ansible-vault file, the same for the servers and the gateways "
    """(generate one with: python3 -c "import secrets; print(secrets.token_urlsafe(32))")"""
)
REDIS_FIX = "set a Redis password of 16 characters or more in an ansible-vault file"
CPP_SRC_FIX = (
    "point it at the GGUF file on the controller, or set llamacpp.model_url with llamacpp.model_checksum, "
    "or remove model_src to use model_file on the host"
)
WHITESPACE_FIX = "remove it (a vault block scalar keeps its last line break: write |- or a quoted string)"
CONTROL_FIX = "remove it (the value is written into a unit, env or config file)"
OVERRIDDEN = "set by the playbooks, so an inventory value would be silently overridden"
# What python3 -c "import secrets; print('sk-' + secrets.token_urlsafe(32))" gives, as the fix says.
TOKEN_URLSAFE_KEY = "sk-Xq3v_8dK-Lm2pR9sT0uVwYz1aBcDeFgHiJkLmNoPq4r"
CHARACTERS = "holds a character other than A-Z, a-z, 0-9, '_' and '-'"


def small_catalog() -> dict:
    return {
        "gateway": {"port": 4000},
        "models": [
            {"name": "tiny-vllm", "backend": "vllm", "model": "/srv/models/tiny-vllm", "port": 8001},
            {"name": "tiny-ollama", "backend": "ollama", "model": "qwen2.5:0.5b"},
            {"name": "tiny-cpp", "backend": "llamacpp", "model_file": "/srv/models/tiny.gguf", "port": 8000},
        ],
    }


ABSENT = object()


def valid(**changes: object) -> dict:
    """A valid inventory, with changes; a change to ABSENT leaves that variable out."""
    variables = {
        "llm_stack_catalog": small_catalog(),
        "llm_stack_litellm_master_key": MASTER_KEY,
        "llm_stack_redis_password": REDIS_PASSWORD,
        "llm_stack_vllm_api_key": VLLM_KEY,
        "llm_stack_llamacpp_api_key": CPP_KEY,
        "ollama_archive_checksum": CHECKSUM,
    }
    variables.update(changes)
    return {name: value for name, value in variables.items() if value is not ABSENT}


def problems_of(variables: dict, hosts: list[str] | None = None, host: str = HOST, **kwargs: object) -> list[str]:
    return inventory_problems(variables, hosts or [HOST], ROLES, host, **kwargs)


def one_problem(**changes: object) -> str:
    found = problems_of(valid(**changes))
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------------------------------------
# The shipped inventories, templated as Ansible would


def group_vars(inventory: Path, *extra: Path) -> dict:
    loader = DataLoader()
    variables: dict = {}
    for path in [*sorted((inventory / "group_vars" / "all").glob("*.yml")), *extra]:
        variables.update(loader.load_from_file(str(path), trusted_as_template=True))
    return variables


def templated(variables: dict) -> dict:
    templar = Templar(loader=DataLoader(), variables=variables)
    return {name: templar.template(variables[name]) for name in relevant_names(variables, ROLES)}


@pytest.fixture
def lab_cache(tmp_path: Path) -> Path:
    """The lab's artifact cache, with the two models the lab's catalog copies from the controller."""
    (tmp_path / "models" / "tiny-llama-hf").mkdir(parents=True)
    (tmp_path / "models" / "tiny-llama-hf" / "config.json").write_text("{}\n")
    (tmp_path / "models" / "tiny-llama.gguf").write_bytes(b"GGUF")
    issue(tmp_path / "tls")  # as lab/tasks/gateway_tls.yml issues them, for the catalog's gateway.tls
    # scripts/prepare-lab-artifacts.sh adds its own build's hash to the shipped lock.
    (tmp_path / "locks").mkdir()
    shutil.copy(ROLES / "python_venv" / "files" / "locks" / "llama-cpp-python.txt", tmp_path / "locks")
    return tmp_path


def lab_variables(cache: Path) -> dict:
    variables = group_vars(INVENTORIES / "lab")
    variables["lab_cache"] = str(cache)
    variables["lab_tls_dir"] = str(cache / "tls")
    # The lab reads this from the cache's sha256sum.txt through a file lookup, which needs a whole Ansible run.
    variables["ollama_archive_checksum"] = CHECKSUM
    return templated(variables)


# The phases' own settings


def test_rolling_restart_is_a_boolean() -> None:
    assert problems_of(valid(llm_stack_rolling_restart=False)) == []
    assert one_problem(llm_stack_rolling_restart="no") == (
        "llm_stack_rolling_restart: 'no' is not one of its choices; use one of true, false"
    )


def test_the_lock_wait_is_a_number_of_seconds() -> None:
    assert problems_of(valid(llm_stack_run_lock_wait=600)) == []
    assert problems_of(valid(llm_stack_run_lock_wait="30")) == []
    for bad, shown in (("ten minutes", "'ten minutes'"), (-5, "-5"), (True, "true")):
        assert one_problem(llm_stack_run_lock_wait=bad) == (
            f"llm_stack_run_lock_wait: {shown} is not a number of seconds; use a whole number, 0 or more"
        )


def test_managing_the_nvidia_driver_is_a_boolean() -> None:
    assert problems_of(valid(llm_stack_manage_nvidia_driver=True)) == []
    assert one_problem(llm_stack_manage_nvidia_driver="yes") == (
        "llm_stack_manage_nvidia_driver: 'yes' is not one of its choices; use one of true, false"
    )


def test_prove_fallbacks_takes_one_of_its_words() -> None:
    assert problems_of(valid(llm_stack_prove_fallbacks="always")) == []
    assert one_problem(llm_stack_prove_fallbacks="sometimes") == (
        "llm_stack_prove_fallbacks: 'sometimes' is not one of its choices; use one of changed, always, never"
    )


def example_variables(**filled_in: str) -> dict:
    inventory = INVENTORIES / "example"
    variables = group_vars(inventory, inventory / "group_vars" / "all" / "vault.yml.example")
    variables.update(filled_in)
    return templated(variables)


def test_the_lab_inventory_is_valid(lab_cache: Path) -> None:
    assert problems_of(lab_variables(lab_cache), ["llm-lab-debian12"], host="llm-lab-debian12") == []


def lab_problems_without(lab_cache: Path, part: str) -> list[str]:
    """The lab inventory's problems once a part of its artifact cache is gone."""
    shutil.rmtree(lab_cache / part)
    return problems_of(lab_variables(lab_cache), ["llm-lab-debian12"], host="llm-lab-debian12")


def test_the_lab_inventory_without_its_lock_names_it(lab_cache: Path) -> None:
    assert lab_problems_without(lab_cache, "locks") == [
        f"llamacpp_python_requirements_lock: '{lab_cache}/locks/llama-cpp-python.txt' is not a file on the controller; "
        "generate a lock for the llamacpp role's pins (uv pip compile --generate-hashes), set "
        "llamacpp_python_requirements_lock to its path on the controller, or to '' to install without hash checking"
    ]


def test_the_lab_inventory_without_its_model_files_names_both(lab_cache: Path) -> None:
    assert lab_problems_without(lab_cache, "models") == [
        f"models[0] (lab-vllm).vllm.model_src: '{lab_cache}/models/tiny-llama-hf' does not exist on the controller; "
        "point it at the model's Hugging Face directory on the controller, "
        "or remove model_src to let vLLM load '/home/llm-stack/models/tiny-llama-hf' itself",
        f"models[2] (lab-cpp).llamacpp.model_src: '{lab_cache}/models/tiny-llama.gguf' does not exist on the "
        f"controller; {CPP_SRC_FIX}",
    ]


def test_the_example_inventory_filled_in_is_valid() -> None:
    variables = example_variables(
        llm_stack_vllm_api_key="example-vllm-key",
        llm_stack_llamacpp_api_key="example-llamacpp-key",
        llm_stack_hf_token="hf_exampletoken",
        llm_stack_litellm_master_key="sk-example-master-key-0123456789abcdef",
        llm_stack_redis_password="example-redis-password",
        ollama_archive_checksum=CHECKSUM,
        llamacpp_native_source_checksum=CHECKSUM,
    )
    assert problems_of(variables, [HOST]) == []


def test_the_example_inventory_as_shipped_asks_for_what_the_operator_fills_in() -> None:
    assert problems_of(example_variables(), [HOST]) == [
        f"llm_stack_litellm_master_key: empty; {MK_FIX}",
        "llm_stack_redis_password: empty, and the gateway's cache needs it (litellm_cache, default true); "
        f"{REDIS_FIX}, or set litellm_cache: false",
        "llm_stack_vllm_api_key: empty, but the plan places llm-vllm-qwen-coder.service on gpu01, and every vLLM "
        f"server requires its key; {KEY_FIX}",
        "llm_stack_llamacpp_api_key: empty, but the plan places llm-llamacpp-qwen-coder-cpp.service on gpu01, and "
        f"every llama.cpp server requires its key; {KEY_FIX}",
        "ollama_archive_checksum: empty, and the catalog has Ollama models (Ollama is only installed from a "
        "verified archive); set 'sha256:' followed by the 64 hex digits of the archive at ollama_archive_url "
        "(the line for it in the release's sha256sum.txt)",
        "llamacpp_native_source_checksum: empty, and models[3] (qwen-coder-cpp-native) uses the native flavor "
        "(llama-server is only built from a verified archive); set 'sha256:' followed by the 64 hex digits of "
        "the archive at llamacpp_native_source_url (sha256sum <archive>)",
    ]


# ---------------------------------------------------------------------------------------------------------
# The catalog


def test_a_valid_small_inventory_has_no_problem() -> None:
    assert problems_of(valid()) == []


def test_a_missing_catalog_is_named_with_the_fix() -> None:
    assert one_problem(llm_stack_catalog=ABSENT) == (
        "llm_stack_catalog: not defined; declare the model catalog in the inventory's group_vars "
        "(see inventories/example/group_vars/all/catalog.yml)"
    )


def test_the_catalogs_problems_are_included_as_they_are() -> None:
    catalog = small_catalog()
    catalog["models"][0]["backend"] = "vlm"
    catalog["models"][2]["port"] = 70000
    with pytest.raises(CatalogError) as error:
        build_plan(catalog, [HOST])
    assert len(error.value.problems) == 2
    assert problems_of(valid(llm_stack_catalog=catalog)) == error.value.problems


def test_the_catalog_is_planned_for_the_group_and_the_host_must_be_in_it() -> None:
    assert problems_of(valid(), ["gpu02"]) == [
        "gpu01: not in the group llm_hosts the catalog is planned for; run the play on llm_hosts only"
    ]


def test_a_planner_that_breaks_is_one_problem_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(catalog: dict, hosts: list[str], addresses: object = None) -> dict:
        raise KeyError("models")

    monkeypatch.setattr(inventory_check, "build_plan", broken)
    assert problems_of(valid()) == [
        "llm_stack_catalog: the catalog could not be checked (KeyError: 'models'); "
        "report this as a bug of labai.llm_stack, with the catalog"
    ]


def test_the_hosts_addresses_reach_the_planner(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def planner(catalog: dict, hosts: list[str], addresses: object = None) -> dict:
        calls.append(addresses)
        return {"models": [], "hosts": {host: {} for host in hosts}}

    monkeypatch.setattr(inventory_check, "build_plan", planner)
    assert problems_of(valid()) == []
    assert problems_of(valid(), addresses={HOST: "10.0.0.5"}) == []
    assert calls == [None, {HOST: "10.0.0.5"}]


def test_an_address_that_is_a_url_is_refused() -> None:
    assert problems_of(valid(), addresses={HOST: "http://gpu01:8000"}) == [
        "llm_stack_address of gpu01: 'http://gpu01:8000' is not a DNS name or IP address; "
        "set the address or DNS name other hosts reach it at"
    ]


def gateway_on_gpu01() -> dict:
    """The gateway on gpu01; vLLM and llama.cpp on both hosts, bound to every interface; Ollama on gpu01."""
    catalog = small_catalog()
    catalog["gateway"]["hosts"] = [HOST]
    catalog["backends"] = {"vllm": {"bind": "0.0.0.0"}, "llamacpp": {"bind": "0.0.0.0"}}
    catalog["models"][1]["hosts"] = [HOST]
    return catalog


def places(unit: str, host: str, backend: str) -> str:
    return f"the plan places {unit} on {host}, and every {backend} server requires its key"


@pytest.mark.parametrize("host", [HOST, "gpu02"])
def test_every_vllm_and_llamacpp_server_needs_its_key(host: str) -> None:
    variables = valid(
        llm_stack_catalog=gateway_on_gpu01(), llm_stack_vllm_api_key=ABSENT, llm_stack_llamacpp_api_key=""
    )
    assert problems_of(variables, [HOST, "gpu02"], host=host) == [
        f"llm_stack_vllm_api_key: not set, but {places('llm-vllm-tiny-vllm.service', host, 'vLLM')}; {KEY_FIX}",
        "llm_stack_llamacpp_api_key: empty, but "
        f"{places('llm-llamacpp-tiny-cpp.service', host, 'llama.cpp')}; {KEY_FIX}",
    ]
    assert problems_of(valid(llm_stack_catalog=gateway_on_gpu01()), [HOST, "gpu02"], host=host) == []


def test_backends_beside_their_gateway_need_their_keys_too() -> None:
    variables = valid(llm_stack_vllm_api_key=ABSENT, llm_stack_llamacpp_api_key=None)
    assert problems_of(variables) == [
        f"llm_stack_vllm_api_key: not set, but {places('llm-vllm-tiny-vllm.service', HOST, 'vLLM')}; {KEY_FIX}",
        "llm_stack_llamacpp_api_key: empty, but "
        f"{places('llm-llamacpp-tiny-cpp.service', HOST, 'llama.cpp')}; {KEY_FIX}",
    ]


def test_a_gateway_host_needs_the_keys_of_the_servers_it_sends_to() -> None:
    catalog = gateway_on_gpu01()
    catalog["models"][0]["hosts"] = ["gpu02"]
    catalog["models"][2]["hosts"] = ["gpu02"]
    variables = valid(llm_stack_catalog=catalog, llm_stack_vllm_api_key="", llm_stack_llamacpp_api_key=ABSENT)
    assert problems_of(variables, [HOST, "gpu02"], host=HOST) == [
        f"llm_stack_vllm_api_key: empty, but the gateway on gpu01 sends it to llm-vllm-tiny-vllm.service on gpu02; "
        f"{KEY_FIX}",
        "llm_stack_llamacpp_api_key: not set, but the gateway on gpu01 sends it to llm-llamacpp-tiny-cpp.service "
        f"on gpu02; {KEY_FIX}",
    ]


def test_no_backend_key_is_needed_without_such_a_server() -> None:
    catalog = small_catalog()
    catalog["models"] = [catalog["models"][1]]
    no_keys = {"llm_stack_vllm_api_key": ABSENT, "llm_stack_llamacpp_api_key": ABSENT}
    assert problems_of(valid(llm_stack_catalog=catalog, **no_keys)) == []
    # A key set but empty is refused all the same, as every secret is.
    assert one_problem(llm_stack_catalog=catalog, **(no_keys | {"llm_stack_vllm_api_key": ""})) == (
        f"llm_stack_vllm_api_key: set but empty; {KEY_FIX}, or remove it"
    )


def test_a_host_with_neither_a_server_nor_the_gateway_needs_no_backend_key() -> None:
    catalog = small_catalog()
    catalog["gateway"]["hosts"] = [HOST]
    catalog["backends"] = {"ollama": {"bind": "0.0.0.0", "trusted_network": True}}
    catalog["models"][0]["hosts"] = [HOST]
    catalog["models"][1]["hosts"] = ["gpu02"]
    catalog["models"][2]["hosts"] = [HOST]
    variables = valid(llm_stack_catalog=catalog, llm_stack_vllm_api_key=ABSENT, llm_stack_llamacpp_api_key=ABSENT)
    assert problems_of(variables, [HOST, "gpu02"], host="gpu02") == []
    assert len(problems_of(variables, [HOST, "gpu02"], host=HOST)) == 2


def test_a_host_without_the_gateway_or_ollama_needs_neither_their_secrets_nor_their_archive() -> None:
    catalog = small_catalog()
    catalog["gateway"]["hosts"] = [HOST]
    catalog["backends"] = {"vllm": {"bind": "0.0.0.0"}, "llamacpp": {"bind": "0.0.0.0"}}
    catalog["models"][1]["hosts"] = [HOST]
    other = valid(
        llm_stack_catalog=catalog,
        llm_stack_litellm_master_key=ABSENT,
        llm_stack_redis_password=ABSENT,
        ollama_archive_checksum=ABSENT,
    )
    assert problems_of(other, [HOST, "gpu02"], host="gpu02") == []
    assert problems_of(other, [HOST, "gpu02"], host=HOST) == [
        f"llm_stack_litellm_master_key: not set; {MK_FIX}",
        "llm_stack_redis_password: not set, and the gateway's cache needs it (litellm_cache, default true); "
        f"{REDIS_FIX}, or set litellm_cache: false",
        "ollama_archive_checksum: not set, and the catalog has Ollama models (Ollama is only installed from a "
        "verified archive); set 'sha256:' followed by the 64 hex digits of the archive at ollama_archive_url "
        "(the line for it in the release's sha256sum.txt)",
    ]


def test_gateways_sharing_redis_need_its_password_even_without_the_cache() -> None:
    catalog = small_catalog()
    catalog["gateway"]["hosts"] = [HOST, "gpu02"]
    catalog["backends"] = {"vllm": {"bind": "0.0.0.0"}, "llamacpp": {"bind": "0.0.0.0"}}
    catalog["models"] = catalog["models"][::2]
    variables = valid(llm_stack_catalog=catalog, llm_stack_redis_password=ABSENT, litellm_cache=False)
    problem = (
        f"llm_stack_redis_password: not set, and the gateways on {HOST}, gpu02 share their cooldowns through Redis "
        f"on {HOST}; {REDIS_FIX}"
    )
    addresses = {HOST: "10.0.0.1", "gpu02": "10.0.0.2"}
    for host in (HOST, "gpu02"):
        assert problems_of(variables, [HOST, "gpu02"], host=host, addresses=addresses) == [problem]


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("0.0.0.0", "'0.0.0.0' is every interface"),
        ("203.0.113.7", "'203.0.113.7' is not a private address"),
    ],
)
def test_redis_shared_over_the_network_binds_a_private_address_only(address: str, what: str) -> None:
    catalog = small_catalog()
    catalog["gateway"]["hosts"] = [HOST, "gpu02"]
    catalog["backends"] = {"vllm": {"bind": "0.0.0.0"}, "llamacpp": {"bind": "0.0.0.0"}}
    catalog["models"] = catalog["models"][::2]
    hosts = [HOST, "gpu02"]
    assert problems_of(valid(llm_stack_catalog=catalog), hosts, addresses={HOST: "10.0.0.1", "gpu02": "10.0.0.2"}) == []
    assert problems_of(valid(llm_stack_catalog=catalog), hosts, addresses={HOST: address, "gpu02": "10.0.0.2"}) == [
        f"llm_stack_address of gpu01: {what}, and Redis on gpu01 would listen on it for the gateway on gpu02; "
        "set llm_stack_address of gpu01 to its address on the private network (10.0.0.0/8, 172.16.0.0/12, "
        "192.168.0.0/16 or an IPv6 unique local address, fc00::/7), or name a host that has one in gateway.redis_host"
    ]


# ---------------------------------------------------------------------------------------------------------
# Secrets


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, f"empty; {MK_FIX}"),
        ("", f"empty; {MK_FIX}"),
        (12345, f"expected a string, got an integer; {MK_FIX}"),
        ("unit-test-master-key-0123456789abcdef", f"does not start with 'sk-' (LiteLLM wants it); {MK_FIX}"),
        ("sk-" + "a" * 31, f"fewer than 32 characters after 'sk-'; {MK_FIX}"),
        ("sk-0123456789abcdef", f"fewer than 32 characters after 'sk-'; {MK_FIX}"),
        ("sk-" + "a" * 31 + "+", f"{CHARACTERS}; {MK_FIX}"),
        ("sk-unit.test/master=key-0123456789abcdef", f"{CHARACTERS}; {MK_FIX}"),
        pytest.param("sk-" + "\u00e9" * 32, f"{CHARACTERS}; {MK_FIX}", id="non-ascii-letters"),
        pytest.param("sk-" + "\u0661" * 32, f"{CHARACTERS}; {MK_FIX}", id="non-ascii-digits"),
        ("sk-unit-test-master-key-0123456789abcdef\n", f"contains whitespace or a line break; {WHITESPACE_FIX}"),
    ],
)
def test_the_master_key(value: object, problem: str) -> None:
    assert one_problem(llm_stack_litellm_master_key=value) == f"llm_stack_litellm_master_key: {problem}"


def test_the_master_key_is_required() -> None:
    assert one_problem(llm_stack_litellm_master_key=ABSENT) == f"llm_stack_litellm_master_key: not set; {MK_FIX}"


@pytest.mark.parametrize(
    "value",
    ["sk-" + "a" * 32, "sk-ABCXYZabcxyz0123456789_-_-_-_-ab", TOKEN_URLSAFE_KEY],
)
def test_thirty_two_letters_digits_underscores_or_dashes_after_sk_are_enough(value: str) -> None:
    assert problems_of(valid(llm_stack_litellm_master_key=value)) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"llm_stack_redis_password": ABSENT},
            "not set, and the gateway's cache needs it (litellm_cache, default true); "
            f"{REDIS_FIX}, or set litellm_cache: false",
        ),
        (
            {"llm_stack_redis_password": "", "litellm_cache": True},
            "empty, and the gateway's cache needs it (litellm_cache, default true); "
            f"{REDIS_FIX}, or set litellm_cache: false",
        ),
        ({"llm_stack_redis_password": "fifteen-chars15"}, f"shorter than 16 characters; {REDIS_FIX}"),
        ({"llm_stack_redis_password": "short", "litellm_cache": False}, f"shorter than 16 characters; {REDIS_FIX}"),
        ({"llm_stack_redis_password": "", "litellm_cache": False}, f"set but empty; remove it, or {REDIS_FIX}"),
        ({"llm_stack_redis_password": ["a"]}, "expected a string, got a list; " + REDIS_FIX + ", or set "),
    ],
)
def test_the_redis_password(changes: dict, problem: str) -> None:
    assert one_problem(**changes).startswith(f"llm_stack_redis_password: {problem}")


def test_no_redis_password_is_needed_without_the_cache() -> None:
    assert problems_of(valid(llm_stack_redis_password=ABSENT, litellm_cache=False)) == []


def test_the_hugging_face_token_is_left_out_or_set() -> None:
    name, fix = "llm_stack_hf_token", "remove it to use no Hugging Face token, or set the token"
    assert problems_of(valid()) == []
    assert problems_of(valid(**{name: "a-real-key"})) == []
    assert one_problem(**{name: ""}) == f"{name}: set but empty; {fix}"
    assert one_problem(**{name: None}) == f"{name}: set but empty; {fix}"
    assert one_problem(**{name: "two words"}) == f"{name}: contains whitespace or a line break; {WHITESPACE_FIX}"
    assert one_problem(**{name: 42}) == f"{name}: expected a string, got an integer; {fix}"


@pytest.mark.parametrize("name", ["llm_stack_vllm_api_key", "llm_stack_llamacpp_api_key"])
def test_a_backend_key_is_one_string_without_whitespace(name: str) -> None:
    assert one_problem(**{name: "two words"}) == f"{name}: contains whitespace or a line break; {WHITESPACE_FIX}"
    assert one_problem(**{name: 42}) == f"{name}: expected a string, got an integer; {KEY_FIX}"


def test_no_message_shows_a_secrets_value() -> None:
    secret = "SECRET-VALUE-0123456789"
    variables = valid(
        llm_stack_litellm_master_key=f"xx-{secret}",
        llm_stack_redis_password=f" {secret}",
        llm_stack_vllm_api_key=f"{secret}\n",
        llm_stack_llamacpp_api_key=f"{secret} {secret}",
        vllm_api_key=secret,
        litellm_backend_api_keys={"vllm": secret},
        vllm_extra_env={"HF_TOKEN": f"{secret}\n"},
    )
    unresolved = {"llm_stack_hf_token": f"'{secret}' is undefined", "llm_stack_llamacpp_api_key": f"bad {secret}"}
    problems = problems_of(variables, unresolved=unresolved)
    assert len(problems) == 8, problems
    assert not [problem for problem in problems if secret in problem]


@pytest.mark.parametrize(
    "name",
    [
        "llm_stack_litellm_master_key",
        "llm_stack_redis_password",
        "llm_stack_vllm_api_key",
        "llm_stack_llamacpp_api_key",
        "llm_stack_hf_token",
    ],
)
@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x9b"])
def test_a_secret_with_a_control_character_is_refused(name: str, control: str) -> None:
    secret = f"sk-SECRET-VALUE-0123456789{control}abc"
    assert one_problem(**{name: secret}) == f"{name}: contains a control character; {CONTROL_FIX}"


# ---------------------------------------------------------------------------------------------------------
# Files on the controller, and the archives' checksums


def with_model_src(vllm_src: object = None, cpp_src: object = None) -> dict:
    catalog = small_catalog()
    if vllm_src is not None:
        catalog["models"][0]["vllm"] = {"model_src": str(vllm_src)}
    if cpp_src is not None:
        catalog["models"][2]["llamacpp"] = {"model_src": str(cpp_src)}
    return valid(llm_stack_catalog=catalog)


def test_model_sources_on_the_controller_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF")
    assert problems_of(with_model_src(tmp_path / "hf", tmp_path / "tiny.gguf")) == []


def test_a_vllm_model_src_must_be_a_directory_there(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    fix = (
        "point it at the model's Hugging Face directory on the controller, "
        "or remove model_src to let vLLM load '/srv/models/tiny-vllm' itself"
    )
    assert problems_of(with_model_src(tmp_path / "absent")) == [
        f"models[0] (tiny-vllm).vllm.model_src: '{tmp_path}/absent' does not exist on the controller; {fix}"
    ]
    assert problems_of(with_model_src(tmp_path / "file")) == [
        f"models[0] (tiny-vllm).vllm.model_src: '{tmp_path}/file' is not a directory on the controller; {fix}"
    ]


def test_a_llamacpp_model_src_must_be_a_regular_file_there(tmp_path: Path) -> None:
    assert problems_of(with_model_src(cpp_src=tmp_path / "absent.gguf")) == [
        f"models[2] (tiny-cpp).llamacpp.model_src: '{tmp_path}/absent.gguf' does not exist on the controller; "
        f"{CPP_SRC_FIX}"
    ]
    assert problems_of(with_model_src(cpp_src=tmp_path)) == [
        f"models[2] (tiny-cpp).llamacpp.model_src: '{tmp_path}' is a directory, not a file; {CPP_SRC_FIX}"
    ]
    assert problems_of(with_model_src(cpp_src="/dev/null")) == [
        f"models[2] (tiny-cpp).llamacpp.model_src: '/dev/null' is not a regular file; {CPP_SRC_FIX}"
    ]


OLLAMA_CHECKSUM_FIX = (
    "set 'sha256:' followed by the 64 hex digits of the archive at ollama_archive_url "
    "(the line for it in the release's sha256sum.txt)"
)
NATIVE_CHECKSUM_FIX = (
    "set 'sha256:' followed by the 64 hex digits of the archive at llamacpp_native_source_url (sha256sum <archive>)"
)


def test_the_ollama_archive_checksum_is_needed_for_ollama_models_only() -> None:
    needed = "the catalog has Ollama models (Ollama is only installed from a verified archive)"
    assert one_problem(ollama_archive_checksum=ABSENT) == (
        f"ollama_archive_checksum: not set, and {needed}; {OLLAMA_CHECKSUM_FIX}"
    )
    assert one_problem(ollama_archive_checksum="sha256:abc") == (
        f"ollama_archive_checksum: 'sha256:abc' is not 'sha256:' followed by 64 hex digits; {OLLAMA_CHECKSUM_FIX}"
    )
    assert one_problem(ollama_archive_checksum=["sha256"]) == (
        "ollama_archive_checksum: expected a string, got a list; set a string"
    )
    catalog = small_catalog()
    del catalog["models"][1]
    catalog["models"][0].pop("fallbacks", None)
    assert problems_of(valid(llm_stack_catalog=catalog, ollama_archive_checksum=ABSENT)) == []


def test_the_native_source_checksum_is_needed_for_the_native_flavor_only() -> None:
    catalog = small_catalog()
    catalog["models"][2]["llamacpp"] = {"flavor": "native"}
    assert problems_of(valid(llm_stack_catalog=catalog)) == [
        "llamacpp_native_source_checksum: not set, and models[2] (tiny-cpp) uses the native flavor "
        f"(llama-server is only built from a verified archive); {NATIVE_CHECKSUM_FIX}"
    ]
    assert problems_of(valid(llm_stack_catalog=catalog, llamacpp_native_source_checksum=CHECKSUM)) == []
    assert problems_of(valid(llamacpp_native_source_checksum="")) == []  # the python flavor builds nothing


# ---------------------------------------------------------------------------------------------------------
# Role settings: the argument specs


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "vllm_dtype",
            ["float16"],
            "expected a string, got a list; use one of auto, half, float16, bfloat16, float, float32",
        ),
        (
            "vllm_dtype",
            "fp16",
            "'fp16' is not one of its choices; use one of auto, half, float16, bfloat16, float, float32",
        ),
        ("vllm_flavor", "gpu", "'gpu' is not one of its choices; use one of cuda, cpu"),
        ("vllm_enforce_eager", "sometimes", "expected a boolean, got a string; use true or false, without quotes"),
        ("vllm_enforce_eager", "yes", "expected a boolean, got a string; use true or false, without quotes"),
        (
            "vllm_cpu_kvcache_space",
            "4",
            "expected an integer, got a string; use a whole number such as 4, without quotes",
        ),
        ("vllm_hf_offline", None, "expected a boolean, got null; use true or false, without quotes"),
        (
            "llamacpp_native_cmake_args",
            "-DGGML_CUDA=ON -DGGML_NATIVE=OFF",
            "expected a list of strings, got a string; "
            "write it as a YAML list, such as ['-DGGML_CUDA=ON', '-DGGML_NATIVE=OFF']",
        ),
        (
            "llamacpp_python_cmake_args",
            ["-DGGML_CUDA=on", {"GGML": "on"}],
            "item 1 is a mapping, but a list of strings is expected; write it as a YAML list of strings",
        ),
        (
            "litellm_router_settings",
            [{"num_retries": 2}],
            "expected a mapping, got a list; write it as a YAML mapping of names to values",
        ),
        ("litellm_cache", "no", "expected a boolean, got a string; use true or false, without quotes"),
        ("ollama_keep_alive", None, "expected a string, got null; set a string"),
        (
            "ollama_origins",
            "http://a",
            "expected a list of strings, got a string; write it as a YAML list, such as ['http://a']",
        ),
        ("redis_port", 6379.5, "expected an integer, got a number; use a whole number such as 6379, without quotes"),
        ("service_account_create", "true", "expected a boolean, got a string; use true or false, without quotes"),
    ],
)
def test_a_setting_of_the_wrong_type(name: str, value: object, problem: str) -> None:
    assert one_problem(**{name: value}) == f"{name}: {problem}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("vllm_dtype", "bfloat16"),
        ("vllm_flavor", "cpu"),
        ("vllm_enforce_eager", True),
        ("vllm_version", "0.33.0"),
        ("vllm_extra_env", {"VLLM_LOGGING_LEVEL": "DEBUG", "OMP_NUM_THREADS": 4}),
        ("llamacpp_native_cmake_args", ["-DGGML_CUDA=ON"]),
        ("litellm_router_settings", {"num_retries": 2, "routing_strategy": "least-busy"}),
        ("ollama_keep_alive", -1),
        ("service_account_user", "llm-svc"),
        ("redis_gateway_user", "gw.lab-01"),
        ("litellm_cache_namespace", "lab_cache"),
        ("vllm_pip_options", {"find_links": ["/srv/wheels"], "no_index": True, "cert": "/etc/ssl/ca.pem"}),
    ],
)
def test_a_setting_of_the_right_type(name: str, value: object) -> None:
    assert problems_of(valid(**{name: value})) == []


def test_an_unknown_setting_gets_the_closest_name_or_remove_it() -> None:
    assert one_problem(vllm_flavour="cpu") == "vllm_flavour: not a setting of the vllm role; did you mean vllm_flavor?"
    assert one_problem(litellm_cache_redis_hostname="redis") == (
        "litellm_cache_redis_hostname: not a setting of the litellm role; did you mean litellm_cache_redis_host?"
    )
    assert one_problem(redis_snapshots=True) == (
        "redis_snapshots: not a setting of the redis role; remove it (see the redis role's argument spec)"
    )


def test_a_secret_setting_of_the_wrong_kind_shows_no_value() -> None:
    spec = {"type": "str", "choices": ["a", "b"], "no_log": True}
    assert inventory_check._spec_problem("x_key", spec, "SECRET") == (
        "the value is not one of its choices",
        "use one of a, b",
    )


# ---------------------------------------------------------------------------------------------------------
# Role settings: what the roles' asserts check

ACCOUNT_FIX = (
    "name a dedicated account without sudo (the default, llm-stack, is created for you), "
    "or set service_account_allow_privileged: true to accept it"
)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"service_account_user": "LLM Service"},
            "service_account_user: 'LLM Service' is not a valid Linux user name; use lowercase letters, digits, "
            "'_' and '-', starting with a letter or '_', at most 32 characters",
        ),
        (
            {"service_account_create": True, "service_account_user": ""},
            "service_account_create: true, but service_account_user is empty; name the dedicated account to "
            "create in service_account_user (the default is llm-stack)",
        ),
        (
            {"service_account_create": False, "service_account_user": ""},
            "service_account_user: is empty, which means the user Ansible connects as; " + ACCOUNT_FIX,
        ),
        (
            {"service_account_user": "root"},
            "service_account_user: 'root' would run every service as root; " + ACCOUNT_FIX,
        ),
        (
            {"service_account_user": "ops", "ansible_user": "ops"},
            "service_account_user: 'ops' is the user Ansible connects as (ansible_user), whose ~/.ssh and sudo a "
            "service would own; " + ACCOUNT_FIX,
        ),
        (
            {"service_account_home": "home/llm"},
            "service_account_home: 'home/llm' is not an absolute path; use an absolute path on the host, "
            "or '' for the default",
        ),
        ({"redis_port": 70000}, "redis_port: 70000 is outside 1-65535; use a TCP port between 1 and 65535"),
        (
            {"litellm_cache_namespace": "llm*"},
            "litellm_cache_namespace: 'llm*' is not a Redis ACL name; use only A-Z, a-z, 0-9, '_', '-' and '.'",
        ),
        (
            {"redis_gateway_user": "default"},
            "redis_gateway_user: 'default' is Redis's own user, which the redis role turns off; name another user",
        ),
        (
            {"ollama_num_parallel": -1},
            "ollama_num_parallel: -1 is less than 0; use 0 or more (0: Ollama's default)",
        ),
        (
            {"litellm_cache_redis_timeout": 0},
            "litellm_cache_redis_timeout: 0 is less than 0.1; use 0.1 or more",
        ),
        (
            {"python_venv_keep_previous": -1},
            "python_venv_keep_previous: -1 is less than 0; use 0 or more (0: only the virtualenvs the units name)",
        ),
        (
            {"ollama_keep_previous": -2},
            "ollama_keep_previous: -2 is less than 0; use 0 or more (0: only the releases the unit names)",
        ),
        (
            {"llamacpp_native_keep_previous": -1},
            "llamacpp_native_keep_previous: -1 is less than 0; use 0 or more (0: only the builds the units name)",
        ),
        (
            {"python_venv_keep_previous": "2"},
            "python_venv_keep_previous: expected an integer, got a string; "
            "use a whole number such as 2, without quotes",
        ),
        (
            {"ollama_archive_url": "ftp://mirror/ollama.tgz"},
            "ollama_archive_url: 'ftp://mirror/ollama.tgz' is not an http(s):// or file:// URL; "
            "use the archive's http(s):// or file:// URL",
        ),
        (
            {"vllm_pip_options": {"find_link": ["/srv/wheels"]}},
            "vllm_pip_options.find_link: not a pip option the python_venv role knows; did you mean 'find_links'?",
        ),
        (
            {"litellm_pip_options": {"no_index": "yes"}},
            "litellm_pip_options.no_index: expected a boolean, got a string; use true or false, without quotes",
        ),
        (
            {"llamacpp_pip_options": {"find_links": "/srv/wheels"}},
            "llamacpp_pip_options.find_links: expected a list of strings, got a string; "
            "write it as a YAML list, such as ['/srv/wheels']",
        ),
        (
            {"vllm_pip_options": {"index_url": "https://mirror/simple", "extra_index_urls": ["https://other/simple"]}},
            "vllm_pip_options.extra_index_urls: refused: with a second index, pip takes a same-named package from "
            "whichever index has the higher version (dependency confusion); mirror everything on one index_url, "
            "or install torch from its own index with vllm_torch_index_url",
        ),
        (
            {"ollama_extra_env": {"OLLAMA-DEBUG": "1"}},
            "ollama_extra_env: 'OLLAMA-DEBUG' is not an environment variable name; "
            "use letters, digits and '_', not starting with a digit",
        ),
        (
            {"vllm_extra_env": {"HF_TOKEN": "line one\nline two"}},
            "vllm_extra_env.HF_TOKEN: the value has a line break; set a one-line value",
        ),
        (
            {"llamacpp_extra_env": {"LLAMA_ARG_N_PARALLEL": [1, 2]}},
            "llamacpp_extra_env.LLAMA_ARG_N_PARALLEL: expected a string or number, got a list; set a one-line value",
        ),
    ],
)
def test_what_the_roles_asserts_check(changes: dict, problem: str) -> None:
    assert problems_of(valid(**changes)) == [problem]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"vllm_hf_home": "/srv/hf\x07"},
            "vllm_hf_home: '/srv/hf\\x07' contains a control character (U+0007)",
        ),
        (
            {"ollama_origins": ["http://ok.invalid", "http://a.invalid\nOLLAMA_HOST=0.0.0.0"]},
            "ollama_origins[1]: 'http://a.invalid\\nOLLAMA_HOST=0.0.0.0' contains a control character (U+000A)",
        ),
        (
            {"litellm_router_settings": {"routing_strategy": "simple-shuffle\r"}},
            "litellm_router_settings.routing_strategy: 'simple-shuffle\\r' contains a control character (U+000D)",
        ),
        (
            {"litellm_router_settings": {"timeout\t": 60}},
            "litellm_router_settings: the key 'timeout\\t' contains a control character (U+0009)",
        ),
        (
            # An env file's values are never shown: they may be secrets.
            {"llamacpp_extra_env": {"LLAMA_ARG_FLASH_ATTN": "on\x1b"}},
            "llamacpp_extra_env.LLAMA_ARG_FLASH_ATTN: contains a control character (U+001B)",
        ),
    ],
)
def test_a_setting_with_a_control_character_is_refused(changes: dict, problem: str) -> None:
    assert problems_of(valid(**changes)) == [f"{problem}; {CONTROL_FIX}"]


def test_a_created_account_with_a_name_is_fine() -> None:
    assert problems_of(valid(service_account_create=True, service_account_user="llmsvc")) == []


def test_the_default_account_is_a_dedicated_one() -> None:
    assert problems_of(valid(service_account_create=True, ansible_user="ops")) == []


def test_the_operators_own_account_is_accepted_only_when_said_so() -> None:
    for user in ("", "root", "ops"):
        variables = valid(service_account_create=False, service_account_user=user, ansible_user="ops")
        assert problems_of(variables) != []
        assert problems_of(variables | {"service_account_allow_privileged": True}) == []


# ---------------------------------------------------------------------------------------------------------
# Variables the playbooks set, and settings that moved


@pytest.mark.parametrize(("name", "fix"), sorted(PLAYBOOK_SET.items()))
def test_a_variable_the_playbooks_set_is_refused(name: str, fix: str) -> None:
    assert one_problem(**{name: "x"}) == f"{name}: {OVERRIDDEN}; {fix}"


@pytest.mark.parametrize(
    ("name", "instead"),
    [
        ("vllm_api_key", "llm_stack_vllm_api_key"),
        ("vllm_hf_token", "llm_stack_hf_token"),
        ("llamacpp_api_key", "llm_stack_llamacpp_api_key"),
        ("redis_password", "llm_stack_redis_password"),
        ("litellm_cache_redis_password", "llm_stack_redis_password"),
        ("litellm_cache_redis_username", "redis_gateway_user"),
        ("redis_gateway_namespace", "litellm_cache_namespace"),
        ("litellm_master_key", "llm_stack_litellm_master_key"),
        ("litellm_cache_redis_host", "llm_stack_catalog.gateway.redis_host"),
    ],
)
def test_the_fix_names_the_llm_stack_variable(name: str, instead: str) -> None:
    assert one_problem(**{name: "x"}) == f"{name}: {OVERRIDDEN}; remove it and set {instead} instead"


@pytest.mark.parametrize("name", ["vllm_defer_restart", "ollama_defer_restart", "litellm_defer_restart"])
def test_defer_restart_is_the_playbooks(name: str) -> None:
    assert one_problem(**{name: False}) == (
        f"{name}: {OVERRIDDEN}; remove it; phase 2 defers every restart to phase 3 itself"
    )


def test_llm_stack_ready_timeout_moved_into_the_catalog() -> None:
    assert one_problem(llm_stack_ready_timeout={"vllm": 900}) == (
        "llm_stack_ready_timeout: moved into the model catalog; "
        "set llm_stack_catalog.backends.<backend>.ready_timeout (gateway.ready_timeout for the gateway)"
    )


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("vllm_bind_address", "set llm_stack_catalog.backends.vllm.bind (or bind on a model)"),
        ("llamacpp_bind_address", "set llm_stack_catalog.backends.llamacpp.bind (or bind on a model)"),
        ("ollama_bind_address", "set llm_stack_catalog.backends.ollama.bind (or bind on a model)"),
        ("litellm_bind_address", "set llm_stack_catalog.gateway.bind"),
        ("vllm_ready_timeout", "set llm_stack_catalog.backends.vllm.ready_timeout"),
        ("llamacpp_ready_timeout", "set llm_stack_catalog.backends.llamacpp.ready_timeout"),
        ("ollama_ready_timeout", "set llm_stack_catalog.backends.ollama.ready_timeout"),
        ("litellm_ready_timeout", "set llm_stack_catalog.gateway.ready_timeout"),
    ],
)
def test_a_moved_setting_says_where_it_went(name: str, where: str, tmp_path: Path) -> None:
    assert one_problem(**{name: "127.0.0.1"}) == f"{name}: moved into the model catalog; {where}"
    # ... also once the role's argument spec no longer lists it.
    roles = tmp_path / "roles"
    shutil.copytree(ROLES, roles)
    role = name.split("_", maxsplit=1)[0]
    spec_file = roles / role / "meta" / "argument_specs.yml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["argument_specs"]["main"]["options"].pop(name, None)
    spec_file.write_text(yaml.safe_dump(spec))
    variables = valid(**{name: "127.0.0.1"})
    assert inventory_problems(variables, [HOST], roles, HOST) == [f"{name}: moved into the model catalog; {where}"]


def test_every_moved_setting_is_tested() -> None:
    assert len(MOVED) == 9


# ---------------------------------------------------------------------------------------------------------
# Which names are read, and variables whose template failed


def test_ansible_variables_and_role_internals_are_not_read() -> None:
    names = [
        "ansible_host",
        "ansible_connection",
        "inventory_hostname",
        "inventory_dir",
        "group_names",
        "groups",
        "hostvars",
        "omit",
        "playbook_dir",
        "lab_cache",
        "_vllm_venv",
        "__litellm_backups",
        "service_account_info",
        "openai_ready_results",
        "llm_stack_plan",
        "llm_stack_phases",
        "llm_stack_min_free_disk_gb",
        "vllm_dtype",
        "redis_port",
        "llm_stack_catalog",
        "llm_stack_hf_token",
        "llm_stack_ready_timeout",
        "python_venv_root",
    ]
    assert relevant_names(names, ROLES) == [
        "llm_stack_catalog",
        "llm_stack_hf_token",
        "llm_stack_ready_timeout",
        "python_venv_root",
        "redis_port",
        "vllm_dtype",
    ]
    variables = valid(**{name: ["anything"] for name in names[:16]})
    assert problems_of(variables) == []


def test_a_variable_whose_template_fails_is_one_problem_naming_it() -> None:
    error = "'wheelhouse' is undefined\nOrigin: group_vars/all/backends.yml:3:19"
    variables = valid()
    assert problems_of(variables, unresolved={"vllm_pip_options": error}) == [
        "vllm_pip_options: the value cannot be templated ('wheelhouse' is undefined); "
        "define what it uses or correct the expression"
    ]


def test_a_secret_whose_template_fails_shows_only_the_undefined_name() -> None:
    variables = valid(llm_stack_litellm_master_key=ABSENT, llm_stack_catalog=ABSENT)
    unresolved = {
        "llm_stack_litellm_master_key": "'vault_master_key' is undefined",
        "llm_stack_redis_password": "unexpected char 'sk-partial-secret' at 12",
        "llm_stack_catalog": "'lab_cache' is undefined",
    }
    assert problems_of(variables, unresolved=unresolved) == [
        "llm_stack_catalog: the value cannot be templated ('lab_cache' is undefined); "
        "define what it uses or correct the expression",
        "llm_stack_litellm_master_key: the value cannot be templated ('vault_master_key' is undefined; the rest is "
        "not shown for a secret); define what it uses or correct the expression",
        "llm_stack_redis_password: the value cannot be templated (not shown for a secret); "
        "define what it uses or correct the expression",
    ]


def test_a_secret_that_cannot_be_decrypted_asks_for_the_vault_password() -> None:
    error = (
        "Error rendering template: Attempt to use undecryptable variable: "
        "Attempting to decrypt but no vault secrets found."
    )
    assert problems_of(valid(), unresolved={"llm_stack_redis_password": error}) == [
        "llm_stack_redis_password: the value cannot be templated (Attempt to use undecryptable variable: Attempting "
        "to decrypt but no vault secrets found.); give ansible-playbook the vault password (--ask-vault-pass or "
        "--vault-password-file)"
    ]


def test_a_variable_that_must_go_says_so_whatever_its_template() -> None:
    unresolved = {"vllm_api_key": "'vault_vllm_key' is undefined", "vllm_flavour": "'x' is undefined"}
    assert problems_of(valid(), unresolved=unresolved) == [
        f"vllm_api_key: {OVERRIDDEN}; remove it and set llm_stack_vllm_api_key instead",
        "vllm_flavour: not a setting of the vllm role; did you mean vllm_flavor?",
    ]
