# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The service records of the plan: bind addresses, the URLs probes and the gateway use, ready timeouts, and
the catalog refusals that keep them reachable and the model directories the deploy creates safe."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.labai.llm_stack.plugins.filter.deployment_state import deployment_state
from ansible_collections.labai.llm_stack.plugins.filter.litellm_config import litellm_config
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import CatalogError, build_plan

HOSTS = ["gpu01", "gpu02"]
DELETE = object()
BIND_FIX = (
    "use an IP address of the host: 127.0.0.1, a private address, 0.0.0.0 for every interface, "
    "or llm_stack_address for each host's own address"
)
TIMEOUT_FIX = "set the seconds a server may take to be ready after a (re)start, such as 600"
GPU01_FIX = (
    "bind an address the gateway can reach: gpu01's private address, or 0.0.0.0 "
    "(with llm_stack_address set for gpu01 if its inventory name does not resolve)"
)
GPU02_FIX = (
    "bind an address the gateway can reach: gpu02's private address, or 0.0.0.0 "
    "(with llm_stack_address set for gpu02 if its inventory name does not resolve)"
)
ONE_HOST_FIX = "bind 0.0.0.0 and set llm_stack_address for each host, or bind each host's own address"
VLLM_DIR_FIX = "copy the model into a directory of its own, such as /srv/models/qwen"
GGUF_DIR_FIX = "put the GGUF file in a directory of its own, such as /srv/models/qwen.gguf"
CHECKSUM = "sha256:" + "a" * 64
REDIS_ON_GPU01 = (
    "gateway.redis_host: the gateway on gpu02 reaches Redis on gpu01 over the network, but llm_stack_address of "
    "gpu01 is not set; set llm_stack_address of gpu01 to its IP address on the private network"
)


def two_hosts() -> dict:
    """The gateway and a vLLM model on gpu01 (loopback); a llama.cpp and an Ollama model on gpu02 (0.0.0.0)."""
    return {
        "gateway": {"hosts": ["gpu01"]},
        "backends": {"llamacpp": {"bind": "0.0.0.0"}, "ollama": {"bind": "0.0.0.0", "trusted_network": True}},
        "models": [
            {"name": "coder", "backend": "vllm", "model": "org/coder", "port": 8001, "hosts": ["gpu01"]},
            {
                "name": "cpp",
                "backend": "llamacpp",
                "model_file": "/srv/models/cpp.gguf",
                "port": 8000,
                "hosts": ["gpu02"],
            },
            {"name": "small", "backend": "ollama", "model": "qwen2.5:0.5b", "hosts": ["gpu02"]},
        ],
    }


def one_host() -> dict:
    """Every service and the gateway on gpu01, all on the default loopback bind."""
    return {
        "models": [
            {"name": "coder", "backend": "vllm", "model": "org/coder", "port": 8001},
            {"name": "cpp", "backend": "llamacpp", "model_file": "/srv/models/cpp.gguf", "port": 8000},
            {"name": "small", "backend": "ollama", "model": "qwen2.5:0.5b"},
        ],
    }


def changed(catalog: dict, changes: dict[str, object]) -> dict:
    """A copy of catalog with each dotted path ('models.1.bind') set, appended to, or DELETEd."""
    result = copy.deepcopy(catalog)
    for path, value in changes.items():
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target = result
        for key in parents:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        if value is DELETE:
            del target[last]
        elif isinstance(target, list) and last == len(target):
            target.append(value)
        else:
            target[last] = value
    return result


def problems_of(catalog: dict, hosts: list[str], addresses: object = None) -> list[str]:
    with pytest.raises(CatalogError) as exc:
        build_plan(catalog, hosts, addresses)
    return exc.value.problems


def record(plan: dict, host: str, key: str) -> dict:
    [found] = [service for service in plan["hosts"][host]["services"] if service["key"] == key]
    return found


def urls(plan: dict, host: str) -> list[tuple[str, str, str, str]]:
    """(key, bind, probe_url, api_base) of every service on host, in start order."""
    return [(s["key"], s["bind"], s["probe_url"], s["api_base"]) for s in plan["hosts"][host]["services"]]


def gateway_api_bases(plan: dict, public: str) -> list[str]:
    config = litellm_config(plan, "gpu01", {})
    return [e["litellm_params"]["api_base"] for e in config["model_list"] if e["model_name"] == public]


# ---------------------------------------------------------------------------------------------------------
# (a) A specific address: the record, the deployment state and the gateway all use it


@pytest.mark.parametrize(
    ("changes", "host", "key", "public", "expected"),
    [
        pytest.param(
            {"backends.llamacpp.bind": "10.0.0.5"},
            "gpu02",
            "llamacpp-cpp",
            "cpp",
            ("http://10.0.0.5:8000", "http://10.0.0.5:8000/v1"),
            id="llamacpp-backend",
        ),
        pytest.param(
            {"models.1.bind": "10.0.0.5"},
            "gpu02",
            "llamacpp-cpp",
            "cpp",
            ("http://10.0.0.5:8000", "http://10.0.0.5:8000/v1"),
            id="model-own-bind-over-backend-0.0.0.0",
        ),
        pytest.param(
            {"backends.ollama.bind": "10.0.0.5"},
            "gpu02",
            "ollama",
            "small",
            ("http://10.0.0.5:11434", "http://10.0.0.5:11434"),
            id="ollama-backend",
        ),
        pytest.param(
            {"backends.vllm.bind": "10.0.0.5"},
            "gpu01",
            "vllm-coder",
            "coder",
            ("http://10.0.0.5:8001", "http://10.0.0.5:8001/v1"),
            id="vllm-on-the-gateway-host",
        ),
    ],
)
def test_a_private_address_is_used_by_probes_and_the_gateway(changes, host, key, public, expected):
    probe_url, api_base = expected
    plan = build_plan(changed(two_hosts(), changes), HOSTS, {"gpu01": "10.0.0.11", "gpu02": "10.0.0.12"})
    service = record(plan, host, key)
    assert (service["bind"], service["probe_url"], service["api_base"]) == ("10.0.0.5", probe_url, api_base)
    [state] = [s for s in deployment_state(plan, host)["services"] if s["key"] == key]
    assert (state["bind"], state["probe_url"], state["api_base"]) == ("10.0.0.5", probe_url, api_base)
    assert gateway_api_bases(plan, public) == [api_base]


def test_a_models_own_bind_leaves_its_backends_other_models_alone():
    catalog = changed(
        two_hosts(),
        {
            "models.1.bind": "10.0.0.5",
            "models.3": {
                "name": "cpp2",
                "backend": "llamacpp",
                "model_file": "/srv/models/cpp2.gguf",
                "port": 8002,
                "hosts": ["gpu02"],
            },
        },
    )
    assert urls(build_plan(catalog, HOSTS), "gpu02") == [
        ("llamacpp-cpp", "10.0.0.5", "http://10.0.0.5:8000", "http://10.0.0.5:8000/v1"),
        ("llamacpp-cpp2", "0.0.0.0", "http://127.0.0.1:8002", "http://gpu02:8002/v1"),
        ("ollama", "0.0.0.0", "http://127.0.0.1:11434", "http://gpu02:11434"),
    ]


def test_loopback_is_fine_where_every_gateway_runs_on_the_same_host():
    plan = build_plan(one_host(), ["gpu01"])
    assert urls(plan, "gpu01") == [
        ("vllm-coder", "127.0.0.1", "http://127.0.0.1:8001", "http://127.0.0.1:8001/v1"),
        ("llamacpp-cpp", "127.0.0.1", "http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("ollama", "127.0.0.1", "http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("litellm", "127.0.0.1", "http://127.0.0.1:4000", "http://127.0.0.1:4000/v1"),
    ]


# ---------------------------------------------------------------------------------------------------------
# (b) A loopback address the gateway on another host cannot reach


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        pytest.param(
            {"backends.llamacpp.bind": DELETE},
            [
                "backends.llamacpp.bind: 127.0.0.1 is a loopback address, so the gateway on gpu01 cannot reach "
                f"models[1] (cpp) on gpu02; {GPU02_FIX}"
            ],
            id="backend-default",
        ),
        pytest.param(
            {"backends.ollama.bind": "127.0.0.1"},
            [
                "backends.ollama.bind: 127.0.0.1 is a loopback address, so the gateway on gpu01 cannot reach "
                f"backends.ollama on gpu02; {GPU02_FIX}"
            ],
            id="ollama-backend-explicit",
        ),
        pytest.param(
            {"backends.llamacpp.bind": "127.0.0.2"},
            [
                "backends.llamacpp.bind: 127.0.0.2 is a loopback address, so the gateway on gpu01 cannot reach "
                f"models[1] (cpp) on gpu02; {GPU02_FIX}"
            ],
            id="backend-other-loopback-address",
        ),
        pytest.param(
            {"models.1.bind": "127.0.0.1"},
            [
                "models[1] (cpp).bind: 127.0.0.1 is a loopback address, so the gateway on gpu01 cannot reach "
                f"models[1] (cpp) on gpu02; {GPU02_FIX}"
            ],
            id="model-own-bind",
        ),
        pytest.param(
            {"models.1.bind": "::1"},
            [
                "models[1] (cpp).bind: ::1 is a loopback address, so the gateway on gpu01 cannot reach "
                f"models[1] (cpp) on gpu02; {GPU02_FIX}"
            ],
            id="model-own-bind-ipv6",
        ),
        pytest.param(
            {"gateway.hosts": ["gpu01", "gpu02"]},
            [
                "backends.vllm.bind: 127.0.0.1 is a loopback address, so the gateway on gpu02 cannot reach "
                f"models[0] (coder) on gpu01; {GPU01_FIX}",
                REDIS_ON_GPU01,
            ],
            id="second-gateway-on-another-host",
        ),
        pytest.param(
            {"backends": {}},
            [
                "backends.llamacpp.bind: 127.0.0.1 is a loopback address, so the gateway on gpu01 cannot reach "
                f"models[1] (cpp) on gpu02; {GPU02_FIX}",
                "backends.ollama.bind: 127.0.0.1 is a loopback address, so the gateway on gpu01 cannot reach "
                f"backends.ollama on gpu02; {GPU02_FIX}",
            ],
            id="every-backend-default",
        ),
    ],
)
def test_loopback_unreachable_from_the_gateway_is_refused(changes, problems):
    assert problems_of(changed(two_hosts(), changes), HOSTS) == problems


# ---------------------------------------------------------------------------------------------------------
# (c) One host's address bound on several hosts


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        pytest.param(
            {"backends.llamacpp.bind": "10.0.0.5", "models.1.hosts": HOSTS},
            [
                f"backends.llamacpp.bind: 10.0.0.5 is one host's address, but it would be bound on gpu01, gpu02; "
                f"{ONE_HOST_FIX}"
            ],
            id="backend-model-on-two-hosts",
        ),
        pytest.param(
            {"models.1.bind": "10.0.0.5", "models.1.hosts": HOSTS},
            [
                f"models[1] (cpp).bind: 10.0.0.5 is one host's address, but it would be bound on gpu01, gpu02; "
                f"{ONE_HOST_FIX}"
            ],
            id="model-own-bind-on-two-hosts",
        ),
        pytest.param(
            {
                "backends.llamacpp.bind": "10.0.0.5",
                "models.1.hosts": ["gpu01"],
                "models.3": {
                    "name": "cpp2",
                    "backend": "llamacpp",
                    "model_file": "/srv/models/cpp2.gguf",
                    "port": 8002,
                    "hosts": ["gpu02"],
                },
            },
            [
                f"backends.llamacpp.bind: 10.0.0.5 is one host's address, but it would be bound on gpu01, gpu02; "
                f"{ONE_HOST_FIX}"
            ],
            id="backend-two-models-on-two-hosts",
        ),
        pytest.param(
            {"backends.ollama.bind": "fd00::5", "models.2.hosts": HOSTS},
            [
                f"backends.ollama.bind: fd00::5 is one host's address, but it would be bound on gpu01, gpu02; "
                f"{ONE_HOST_FIX}"
            ],
            id="ollama-ipv6-on-two-hosts",
        ),
        pytest.param(
            {"gateway.hosts": HOSTS, "gateway.bind": "10.0.0.5", "backends.vllm.bind": "0.0.0.0"},
            [
                f"gateway.bind: 10.0.0.5 is one host's address, but it would be bound on gpu01, gpu02; {ONE_HOST_FIX}",
                REDIS_ON_GPU01,
            ],
            id="gateway-on-two-hosts",
        ),
    ],
)
def test_a_specific_address_on_two_hosts_is_refused(changes, problems):
    assert problems_of(changed(two_hosts(), changes), HOSTS) == problems


# ---------------------------------------------------------------------------------------------------------
# (d) Every interface: probed on loopback, reached at the host's address (llm_stack_address) or its name


@pytest.mark.parametrize(
    ("addresses", "reach"),
    [
        pytest.param(None, "gpu02", id="hostname-without-addresses"),
        pytest.param({}, "gpu02", id="hostname-when-not-given"),
        pytest.param({"gpu02": "10.0.0.12"}, "10.0.0.12", id="ipv4-address"),
        pytest.param({"gpu02": " 10.0.0.12 "}, "10.0.0.12", id="address-trimmed"),
        pytest.param({"gpu02": "gpu02.lab.example"}, "gpu02.lab.example", id="dns-name"),
        pytest.param({"gpu02": "fd00::12"}, "[fd00::12]", id="ipv6-address-in-brackets"),
        pytest.param({"gpu01": "10.0.0.11", "gpu09": "10.0.0.19"}, "gpu02", id="other-hosts-only"),
    ],
)
@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_every_interface_is_probed_on_loopback_and_reached_at_the_hosts_address(bind, addresses, reach):
    catalog = changed(two_hosts(), {"backends.llamacpp.bind": bind, "backends.ollama.bind": bind})
    plan = build_plan(catalog, HOSTS, addresses)
    assert urls(plan, "gpu02") == [
        ("llamacpp-cpp", bind, "http://127.0.0.1:8000", f"http://{reach}:8000/v1"),
        ("ollama", bind, "http://127.0.0.1:11434", f"http://{reach}:11434"),
    ]
    # vLLM and the gateway on gpu01 keep their loopback bind, whatever gpu01's address is.
    assert urls(plan, "gpu01") == [
        ("vllm-coder", "127.0.0.1", "http://127.0.0.1:8001", "http://127.0.0.1:8001/v1"),
        ("litellm", "127.0.0.1", "http://127.0.0.1:4000", "http://127.0.0.1:4000/v1"),
    ]
    assert gateway_api_bases(plan, "cpp") == [f"http://{reach}:8000/v1"]
    assert gateway_api_bases(plan, "small") == [f"http://{reach}:11434"]


def test_a_gateway_on_every_interface_gives_its_hosts_address():
    catalog = changed(two_hosts(), {"gateway.bind": "0.0.0.0"})
    gateway = record(build_plan(catalog, HOSTS, {"gpu01": "10.0.0.11"}), "gpu01", "litellm")
    assert (gateway["probe_url"], gateway["api_base"]) == ("http://127.0.0.1:4000", "http://10.0.0.11:4000/v1")


@pytest.mark.parametrize(
    ("addresses", "problems"),
    [
        pytest.param(
            ["gpu02"],
            ["plan(addresses): expected a mapping, got a list; map hostnames to addresses"],
            id="not-a-mapping",
        ),
        pytest.param(
            {"gpu02": 10},
            [
                "llm_stack_address of gpu02: expected a string, got an integer; set the address or DNS name other "
                "hosts reach it at"
            ],
            id="not-a-string",
        ),
        pytest.param(
            {"gpu02": " "},
            ["llm_stack_address of gpu02: the value is empty; set the address or DNS name other hosts reach it at"],
            id="blank",
        ),
    ],
)
def test_bad_addresses_are_refused(addresses, problems):
    assert problems_of(two_hosts(), HOSTS, addresses) == problems


# ---------------------------------------------------------------------------------------------------------
# (e) IPv6 addresses stand in brackets in URLs


@pytest.mark.parametrize(
    ("changes", "host", "key", "expected"),
    [
        pytest.param(
            {"backends.vllm.bind": "::1"},
            "gpu01",
            "vllm-coder",
            ("::1", "http://[::1]:8001", "http://[::1]:8001/v1"),
            id="loopback-on-the-gateway-host",
        ),
        pytest.param(
            {"backends.llamacpp.bind": "fd00::5"},
            "gpu02",
            "llamacpp-cpp",
            ("fd00::5", "http://[fd00::5]:8000", "http://[fd00::5]:8000/v1"),
            id="private-address",
        ),
        pytest.param(
            {"backends.ollama.bind": "fd00::5"},
            "gpu02",
            "ollama",
            ("fd00::5", "http://[fd00::5]:11434", "http://[fd00::5]:11434"),
            id="ollama-private-address",
        ),
    ],
)
def test_ipv6_binds_are_bracketed(changes, host, key, expected):
    service = record(build_plan(changed(two_hosts(), changes), HOSTS), host, key)
    assert (service["bind"], service["probe_url"], service["api_base"]) == expected


# ---------------------------------------------------------------------------------------------------------
# (f) Ready timeouts


def test_ready_timeouts_default_per_backend():
    plan = build_plan(two_hosts(), HOSTS)
    assert [(s["key"], s["ready_timeout"]) for host in HOSTS for s in plan["hosts"][host]["services"]] == [
        ("vllm-coder", 600),
        ("litellm", 180),
        ("llamacpp-cpp", 180),
        ("ollama", 120),
    ]


def test_ready_timeouts_from_the_catalog_land_in_the_records():
    catalog = changed(
        two_hosts(),
        {
            "backends.vllm.ready_timeout": 1800,
            "backends.llamacpp.ready_timeout": 60,
            "backends.ollama.ready_timeout": 30,
            "gateway.ready_timeout": 45,
        },
    )
    plan = build_plan(catalog, HOSTS)
    assert [(s["key"], s["ready_timeout"]) for host in HOSTS for s in plan["hosts"][host]["services"]] == [
        ("vllm-coder", 1800),
        ("litellm", 45),
        ("llamacpp-cpp", 60),
        ("ollama", 30),
    ]
    [cpp] = [s for s in deployment_state(plan, "gpu02")["services"] if s["key"] == "llamacpp-cpp"]
    assert cpp["ready_timeout"] == 60


def test_a_models_own_bind_keeps_its_backends_ready_timeout():
    catalog = changed(two_hosts(), {"backends.llamacpp.ready_timeout": 60, "models.1.bind": "10.0.0.5"})
    assert record(build_plan(catalog, HOSTS), "gpu02", "llamacpp-cpp")["ready_timeout"] == 60


@pytest.mark.parametrize("where", ["gateway", "backends.vllm", "backends.llamacpp", "backends.ollama"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-5, "-5"), (True, "true"), ("600", "'600'"), (None, "null"), (1.5, "1.5")],
)
def test_a_ready_timeout_that_is_not_a_positive_integer_is_refused(where, value, shown):
    catalog = changed(two_hosts(), {f"{where}.ready_timeout": value})
    assert problems_of(catalog, HOSTS) == [f"{where}.ready_timeout: {shown} is not a positive integer; {TIMEOUT_FIX}"]


def test_a_model_has_no_ready_timeout_of_its_own():
    problems = problems_of(changed(two_hosts(), {"models.1.ready_timeout": 60}), HOSTS)
    assert problems == [
        "models[1] (cpp): unknown field 'ready_timeout'; remove it or use one of: aliases, backend, bind, "
        "context_window_fallbacks, fallbacks, hosts, llamacpp, model, model_file, name, ollama, port, vllm"
    ]


# ---------------------------------------------------------------------------------------------------------
# (g) A model directory the deploy creates must be the model's own


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        pytest.param(
            {"models.0.model": "/qwen", "models.0.vllm": {"model_src": "/home/ops/qwen"}},
            [
                "models[0] (coder).model: the model would go in /qwen, a top-level directory the deploy would "
                f"take over; {VLLM_DIR_FIX}"
            ],
            id="vllm-top-level",
        ),
        pytest.param(
            {"models.0.model": "/", "models.0.vllm": {"model_src": "/home/ops/qwen"}},
            [
                "models[0] (coder).model: the model would go in /, a top-level directory the deploy would "
                f"take over; {VLLM_DIR_FIX}"
            ],
            id="vllm-root",
        ),
        pytest.param(
            {"models.0.vllm": {"model_src": "/home/ops/qwen"}},
            [
                "models[0] (coder).model: 'org/coder' is not an absolute path, but vllm.model_src copies the "
                f"model there; {VLLM_DIR_FIX}"
            ],
            id="vllm-not-absolute",
        ),
        pytest.param(
            {"models.1.model_file": "/cpp.gguf", "models.1.llamacpp": {"model_src": "/home/ops/cpp.gguf"}},
            [
                "models[1] (cpp).model_file: the model would go in /, a top-level directory the deploy would "
                f"take over; {GGUF_DIR_FIX}"
            ],
            id="llamacpp-root-model-src",
        ),
        pytest.param(
            {
                "models.1.model_file": "/srv/cpp.gguf",
                "models.1.llamacpp": {"model_url": "https://models.example/cpp.gguf", "model_checksum": CHECKSUM},
            },
            [
                "models[1] (cpp).model_file: the model would go in /srv, a top-level directory the deploy would "
                f"take over; {GGUF_DIR_FIX}"
            ],
            id="llamacpp-top-level-model-url",
        ),
        pytest.param(
            {
                "models.1.model_file": "/srv/models/../cpp.gguf",
                "models.1.llamacpp": {"model_src": "/home/ops/cpp.gguf"},
            },
            [
                "models[1] (cpp).model_file: the model would go in /srv/models/.., a top-level directory the "
                f"deploy would take over; {GGUF_DIR_FIX}"
            ],
            id="llamacpp-dot-dot",
        ),
    ],
)
def test_a_top_level_model_directory_is_refused(changes, problems):
    assert problems_of(changed(two_hosts(), changes), HOSTS) == problems


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"models.0.model": "/srv/models/coder", "models.0.vllm": {"model_src": "/home/ops/c"}}, id="vllm"),
        pytest.param({"models.0.model": "/qwen"}, id="vllm-top-level-not-copied"),
        pytest.param({"models.1.llamacpp": {"model_src": "/home/ops/cpp.gguf"}}, id="llamacpp"),
        pytest.param({"models.1.model_file": "/cpp.gguf"}, id="llamacpp-root-not-copied"),
    ],
)
def test_model_directories_below_the_top_level_or_not_created_are_accepted(changes):
    build_plan(changed(two_hosts(), changes), HOSTS)


# ---------------------------------------------------------------------------------------------------------
# (h) A bind that is not an IP address


@pytest.mark.parametrize(
    "where", ["gateway", "backends.vllm", "backends.llamacpp", "backends.ollama", "models[1] (cpp)"]
)
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("localhost", "'localhost'"),
        ("300.1.1.1", "'300.1.1.1'"),
        ("10.0.0.5/24", "'10.0.0.5/24'"),
        ("", "''"),
        (8000, "8000"),
        (None, "null"),
    ],
)
def test_a_bind_that_is_not_an_ip_address_is_refused(where, value, shown):
    # On one host, so that no reachability problem follows from the default the bad value leaves in place.
    path = "models.1.bind" if where.startswith("models") else f"{where}.bind"
    catalog = changed(one_host(), {path: value})
    assert problems_of(catalog, ["gpu01"]) == [f"{where}.bind: {shown} is not an IP address; {BIND_FIX}"]


# ---------------------------------------------------------------------------------------------------------
# (i) Only per-model servers take a port and bind per model; only Ollama's shared server a backend port


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        pytest.param(
            {"models.2.port": 11434},
            [
                "models[2] (small).port: not used by backend ollama (its models share backends.ollama.port); "
                "remove it, or set backends.ollama.port"
            ],
            id="ollama-model-port",
        ),
        pytest.param(
            {"models.2.bind": "0.0.0.0"},
            [
                "models[2] (small).bind: not used by backend ollama (its models share backends.ollama.bind); "
                "remove it, or set backends.ollama.bind"
            ],
            id="ollama-model-bind",
        ),
        pytest.param(
            {"models.2.port": 11435, "models.2.bind": "10.0.0.5"},
            [
                "models[2] (small).port: not used by backend ollama (its models share backends.ollama.port); "
                "remove it, or set backends.ollama.port",
                "models[2] (small).bind: not used by backend ollama (its models share backends.ollama.bind); "
                "remove it, or set backends.ollama.bind",
            ],
            id="ollama-model-port-and-bind",
        ),
        pytest.param(
            {"backends.vllm.port": 8001},
            ["backends.vllm: unknown field 'port'; remove it or use one of: bind, enabled, ready_timeout"],
            id="vllm-backend-port",
        ),
        pytest.param(
            {"backends.llamacpp.port": 8000},
            ["backends.llamacpp: unknown field 'port'; remove it or use one of: bind, enabled, ready_timeout"],
            id="llamacpp-backend-port",
        ),
    ],
)
def test_port_and_bind_where_they_do_not_belong_are_refused(changes, problems):
    assert problems_of(changed(two_hosts(), changes), HOSTS) == problems


def test_ollama_port_and_bind_come_from_its_backend():
    catalog = changed(two_hosts(), {"backends.ollama.port": 11500, "backends.ollama.bind": "10.0.0.5"})
    ollama = record(build_plan(catalog, HOSTS), "gpu02", "ollama")
    assert (ollama["port"], ollama["bind"], ollama["api_base"]) == (11500, "10.0.0.5", "http://10.0.0.5:11500")


def test_one_address_bound_by_two_model_entries_on_two_hosts_is_refused(catalog, hosts):
    catalog["models"][2]["hosts"] = ["gpu01"]
    catalog["models"][2]["bind"] = "10.0.0.5"
    catalog["models"][3]["hosts"] = ["gpu02"]
    catalog["models"][3]["bind"] = "10.0.0.5"
    with pytest.raises(CatalogError) as refused:
        build_plan(catalog, hosts)
    assert refused.value.problems == [
        "models[2] (qwen-coder-cpp).bind: 10.0.0.5 is one host's address, but it would be bound on gpu01, gpu02; "
        + ONE_HOST_FIX
    ]


def test_a_refused_bind_brings_no_follow_on_problem(catalog, hosts):
    catalog["backends"]["llamacpp"]["bind"] = "localhost"
    with pytest.raises(CatalogError) as refused:
        build_plan(catalog, hosts)
    assert refused.value.problems == [f"backends.llamacpp.bind: 'localhost' is not an IP address; {BIND_FIX}"]


def test_the_python_flavor_lists_one_name_and_native_every_alias(catalog, hosts):
    catalog["models"][2]["aliases"] = ["cpp-alias"]
    catalog["models"][3]["aliases"] = ["native-alias"]
    records = {record["key"]: record for record in build_plan(catalog, hosts)["hosts"]["gpu02"]["services"]}
    assert records["llamacpp-qwen-coder-cpp"]["names"] == ["qwen-coder-cpp"]
    assert records["llamacpp-qwen-coder-native"]["names"] == ["qwen-coder-native", "native-alias"]


# Over the network: which gateways reach a server, and Ollama (no authentication) only on a trusted network

OLLAMA_UNTRUSTED = (
    "backends.ollama: the gateway on gpu01 would reach the ollama server on gpu02 over the network, and ollama "
    "has no authentication: anyone who reaches gpu02 can use it; serve it on the gateway's host only, bound to "
    "127.0.0.1, or, where that network is trusted (a private network, a firewall that lets only the gateways "
    "in), set llm_stack_catalog.backends.ollama.trusted_network: true"
)


def test_each_record_names_the_gateways_that_reach_it_over_the_network():
    plan = build_plan(two_hosts(), HOSTS)
    assert [(s["key"], s["reached_from"]) for s in plan["hosts"]["gpu01"]["services"]] == [
        ("vllm-coder", []),
        ("litellm", []),
    ]
    assert [(s["key"], s["reached_from"]) for s in plan["hosts"]["gpu02"]["services"]] == [
        ("llamacpp-cpp", ["gpu01"]),
        ("ollama", ["gpu01"]),
    ]


def test_ollama_reached_over_an_untrusted_network_is_refused():
    catalog = changed(two_hosts(), {"backends.ollama.trusted_network": DELETE})
    assert problems_of(catalog, HOSTS) == [OLLAMA_UNTRUSTED]
    assert problems_of(changed(two_hosts(), {"backends.ollama.trusted_network": False}), HOSTS) == [OLLAMA_UNTRUSTED]


def test_ollama_beside_every_gateway_needs_no_trusted_network():
    build_plan(changed(one_host(), {"backends": {"ollama": {"bind": "0.0.0.0"}}}), ["gpu01"])


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        (
            {"backends.ollama.trusted_network": "yes"},
            ["backends.ollama.trusted_network: 'yes' is not a boolean; use true or false", OLLAMA_UNTRUSTED],
        ),
        (
            {"backends.vllm": {"trusted_network": True}},
            ["backends.vllm: unknown field 'trusted_network'; remove it or use one of: bind, enabled, ready_timeout"],
        ),
    ],
)
def test_trusted_network_is_a_boolean_for_a_backend_without_authentication(changes, problems):
    assert problems_of(changed(two_hosts(), changes), HOSTS) == problems


# Each host's own address: bind llm_stack_address


def test_binding_llm_stack_address_listens_on_each_hosts_own_address():
    catalog = changed(two_hosts(), {"backends.llamacpp.bind": "llm_stack_address", "models.1.hosts": HOSTS})
    plan = build_plan(catalog, HOSTS, {"gpu01": "10.0.0.1", "gpu02": "10.0.0.2"})
    assert [
        (host, s["bind"], s["probe_url"], s["api_base"])
        for host in HOSTS
        for s in plan["hosts"][host]["services"]
        if s["key"] == "llamacpp-cpp"
    ] == [
        ("gpu01", "10.0.0.1", "http://10.0.0.1:8000", "http://10.0.0.1:8000/v1"),
        ("gpu02", "10.0.0.2", "http://10.0.0.2:8000", "http://10.0.0.2:8000/v1"),
    ]
    assert gateway_api_bases(plan, "cpp") == ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]


@pytest.mark.parametrize(
    ("addresses", "problem"),
    [
        ({"gpu01": "10.0.0.1"}, "binds llm_stack_address, which is not set for gpu02"),
        ({"gpu02": "gpu02.lab"}, "binds llm_stack_address, but gpu02's is 'gpu02.lab', not an IP address"),
    ],
)
def test_binding_llm_stack_address_needs_an_ip_address_on_every_host(addresses, problem):
    catalog = changed(two_hosts(), {"backends.llamacpp.bind": "llm_stack_address"})
    assert problems_of(catalog, HOSTS, addresses) == [
        f"backends.llamacpp.bind: {problem}; set llm_stack_address of gpu02 to its IP address on the private network"
    ]


# The Redis every gateway shares: on the first gateway host by default, or where gateway.redis_host says.


def test_one_gateway_keeps_its_redis_on_loopback():
    plan = build_plan(two_hosts(), HOSTS)
    assert plan["redis"] == {"host": "gpu01", "bind": ["127.0.0.1"], "address": "127.0.0.1", "gateways": ["gpu01"]}
    assert record(plan, "gpu01", "litellm")["redis_address"] == "127.0.0.1"


def test_gateways_share_the_redis_named_by_redis_host():
    catalog = changed(two_hosts(), {"gateway.hosts": HOSTS, "gateway.redis_host": "gpu02"})
    catalog = changed(catalog, {"backends.vllm.bind": "0.0.0.0"})
    plan = build_plan(catalog, HOSTS, {"gpu01": "10.0.0.11", "gpu02": "10.0.0.12"})
    assert plan["redis"] == {
        "host": "gpu02",
        "bind": ["127.0.0.1", "10.0.0.12"],
        "address": "10.0.0.12",
        "gateways": HOSTS,
    }
    assert [record(plan, host, "litellm")["redis_address"] for host in HOSTS] == ["10.0.0.12", "127.0.0.1"]


@pytest.mark.parametrize("address", ["10.0.0.11", "172.16.5.1", "172.31.255.254", "192.168.1.11", "fd00::11"])
def test_a_shared_redis_binds_a_private_address(address):
    catalog = changed(two_hosts(), {"gateway.hosts": HOSTS, "backends.vllm.bind": "0.0.0.0"})
    plan = build_plan(catalog, HOSTS, {"gpu01": address, "gpu02": "10.0.0.12"})
    assert plan["redis"]["bind"] == ["127.0.0.1", address]


REDIS_ADDRESS_FIX = (
    "set llm_stack_address of gpu01 to its address on the private network (10.0.0.0/8, 172.16.0.0/12, "
    "192.168.0.0/16 or an IPv6 unique local address, fc00::/7), or name a host that has one in gateway.redis_host"
)


@pytest.mark.parametrize(
    ("address", "what"),
    [
        pytest.param("0.0.0.0", "'0.0.0.0' is every interface", id="every-ipv4-interface"),
        pytest.param("::", "'::' is every interface", id="every-ipv6-interface"),
        pytest.param("203.0.113.7", "'203.0.113.7' is not a private address", id="public"),
        pytest.param("8.8.8.8", "'8.8.8.8' is not a private address", id="public-dns"),
        pytest.param("172.32.0.1", "'172.32.0.1' is not a private address", id="beside-rfc1918"),
        pytest.param("100.64.0.1", "'100.64.0.1' is not a private address", id="carrier-grade-nat"),
        pytest.param("169.254.0.1", "'169.254.0.1' is not a private address", id="link-local"),
        pytest.param("fe80::1", "'fe80::1' is not a private address", id="ipv6-link-local"),
        pytest.param("2001:db8::1", "'2001:db8::1' is not a private address", id="ipv6-global"),
    ],
)
def test_a_shared_redis_on_every_interface_or_a_public_address_is_refused(address, what):
    catalog = changed(two_hosts(), {"gateway.hosts": HOSTS, "backends.vllm.bind": "0.0.0.0"})
    assert problems_of(catalog, HOSTS, {"gpu01": address, "gpu02": "10.0.0.12"}) == [
        f"llm_stack_address of gpu01: {what}, and Redis on gpu01 would listen on it for the gateway on gpu02; "
        f"{REDIS_ADDRESS_FIX}"
    ]


def test_a_shared_redis_on_loopback_is_refused():
    catalog = changed(two_hosts(), {"gateway.hosts": HOSTS, "backends.vllm.bind": "0.0.0.0"})
    assert problems_of(catalog, HOSTS, {"gpu01": "127.0.0.1", "gpu02": "10.0.0.12"}) == [
        "llm_stack_address of gpu01: '127.0.0.1' is a loopback address, so the gateway on gpu02 cannot reach "
        f"Redis on gpu01; {REDIS_ADDRESS_FIX}"
    ]


def test_one_gateways_redis_stays_on_loopback_whatever_the_hosts_address():
    plan = build_plan(two_hosts(), HOSTS, {"gpu01": "203.0.113.7", "gpu02": "10.0.0.12"})
    assert plan["redis"]["bind"] == ["127.0.0.1"]


def test_no_gateway_no_redis():
    catalog = changed(two_hosts(), {"gateway.hosts": ["gpu01"]})
    plan = build_plan(catalog, HOSTS)
    assert "redis_address" not in record(plan, "gpu01", "vllm-coder")


@pytest.mark.parametrize(
    ("changes", "addresses", "problem"),
    [
        pytest.param(
            {},
            {},
            "gateway.redis_host: the gateway on gpu02 reaches Redis on gpu01 over the network, but llm_stack_address "
            "of gpu01 is not set; set llm_stack_address of gpu01 to its IP address on the private network",
            id="shared-redis-needs-an-address",
        ),
        pytest.param(
            {},
            {"gpu01": "gpu01.lab"},
            "gateway.redis_host: the gateway on gpu02 reaches Redis on gpu01 over the network, but llm_stack_address "
            "of gpu01 is 'gpu01.lab', not an IP address; set llm_stack_address of gpu01 to its IP address on the "
            "private network",
            id="shared-redis-binds-an-ip-address",
        ),
        pytest.param(
            {"gateway.redis_host": "gpu03"},
            {},
            "gateway.redis_host: 'gpu03' is not among the play's hosts (gpu01, gpu02); name the inventory host that "
            "runs Redis for every gateway, or leave redis_host out",
            id="redis-host-in-the-play",
        ),
        pytest.param(
            {"gateway.redis_host": ""},
            {},
            "gateway.redis_host: the value is empty; name the inventory host that runs Redis for every gateway, or "
            "leave redis_host out",
            id="redis-host-empty",
        ),
    ],
)
def test_refuses_a_shared_redis_the_gateways_cannot_reach(changes, addresses, problem):
    catalog = changed(two_hosts(), {"gateway.hosts": HOSTS, "backends.vllm.bind": "0.0.0.0", **changes})
    with pytest.raises(CatalogError) as caught:
        build_plan(catalog, HOSTS, addresses)
    assert problem in caught.value.problems
