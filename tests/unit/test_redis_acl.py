# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's Redis user (security issue #13): it may not flush, list keys or reconfigure Redis, and only
uses keys under the gateway's namespace; the default user is off; LiteLLM connects as that user.

Templates and role variables are rendered with Ansible's own templar, from the roles' defaults and vars.
molecule/shared/tasks/redis_acl.yml proves the same against a running Redis.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

TOP = Path(__file__).resolve().parents[2]
ROLES = TOP / "roles"
PASSWORD = "unit-test-redis-password-0123"


def _variables(role: str, **settings: object) -> dict:
    loader = DataLoader()
    variables: dict = {}
    for path in ("defaults/main.yml", "vars/main.yml"):
        variables.update(loader.load_from_file(str(ROLES / role / path), trusted_as_template=True))
    return {**variables, **settings}


def _template(variables: dict, text: str) -> object:
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(text))


def redis_conf(**settings: object) -> str:
    variables = _variables("redis", ansible_managed="Ansible managed", redis_password=PASSWORD, **settings)
    return _template(variables, (ROLES / "redis" / "templates" / "redis.conf.j2").read_text(encoding="utf-8"))


def users(text: str) -> dict[str, list[str]]:
    """Each `user NAME RULE...` line of a config, by name."""
    return {line.split()[1]: line.split()[2:] for line in text.splitlines() if line.startswith("user ")}


def test_the_default_user_is_off_and_no_password_opens_it() -> None:
    text = redis_conf()
    assert users(text)["default"] == ["off"]
    assert "requirepass" not in text


def test_the_gateway_user_cannot_flush_list_keys_or_reconfigure() -> None:
    rules = users(redis_conf())["llm-gateway"]
    assert rules[0] == "on"
    assert rules[-1] == f">{PASSWORD}"
    # Every command but the @dangerous ones (FLUSHALL, FLUSHDB, KEYS, CONFIG, DEBUG, SHUTDOWN, MODULE, ...),
    # with INFO given back; nothing adds one of those back.
    assert rules.index("+@all") < rules.index("-@dangerous") < rules.index("+info")
    assert [rule for rule in rules if rule.startswith("+")] == ["+@all", "+info"]
    assert not {"+flushall", "+flushdb", "+keys", "+config", "+@dangerous", "+@admin"} & set(rules)


def test_the_gateway_user_only_reaches_its_namespace() -> None:
    rules = users(redis_conf(redis_gateway_namespace="lab_cache"))["llm-gateway"]
    assert [rule for rule in rules if rule.startswith(("~", "%"))] == ["~lab_cache:*"]
    assert [rule for rule in rules if rule.startswith("&")] == ["&lab_cache:*"]
    assert "resetchannels" in rules
    assert not {"allkeys", "allchannels", "nopass"} & set(rules)


def test_the_user_is_named_by_the_role() -> None:
    assert set(users(redis_conf(redis_gateway_user="gw"))) == {"default", "gw"}


# ---------------------------------------------------------------------------------------------------------
# tasks/config.yml takes the service account's copy: the role's own, a copy from before the ACL user (a
# rollback restores one), and nothing else


def _config_checks(copy: str) -> list[bool]:
    """The conditions of config.yml's assert, on the directives it takes from `copy`."""
    [_, install] = yaml.safe_load((ROLES / "redis" / "tasks" / "config.yml").read_text(encoding="utf-8"))
    take, check = install["block"][:2]
    variables = _variables(
        "redis",
        __redis_copy={"content": base64.b64encode(copy.encode()).decode()},
        service_account_info={"env_dir": "/home/llm-stack/.config/llm-stack"},
    )
    variables["__redis_directives"] = _template(variables, take["ansible.builtin.set_fact"]["__redis_directives"])
    variables.update({name: trust_as_template(value) for name, value in check["vars"].items()})
    return [_template(variables, "{{ " + that + " }}") for that in check["ansible.builtin.assert"]["that"]]


def test_config_takes_the_roles_copy_and_one_from_before_the_acl_user() -> None:
    copy = redis_conf()
    assert all(_config_checks(copy))
    [gateway] = [line for line in copy.splitlines() if line.startswith("user llm-gateway ")]
    before = copy.replace("user default off\n", "").replace(gateway, f"requirepass {PASSWORD}")
    assert all(_config_checks(before))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("+info", "+info +config"),
        ("-@dangerous", "-flushall"),
        ("~llm_stack:*", "~*"),
        ("&llm_stack:*", "&*"),
        ("user default off", "user default on nopass +@all"),
        ("user llm-gateway", "user default"),
        ("maxmemory-policy", "loadmodule /tmp/x.so\nmaxmemory-policy"),
        ("user default off", f"user default off\nrequirepass {PASSWORD}"),
    ],
)
def test_config_refuses_a_copy_that_widens_the_users(old: str, new: str) -> None:
    copy = redis_conf()
    assert old in copy
    assert not all(_config_checks(copy.replace(old, new)))


def test_a_rollback_puts_the_current_password_into_the_gateway_user() -> None:
    """playbooks/tasks/rollback_secrets.yml: lineinfile with backrefs, as Python's re expands them."""
    settings = yaml.safe_load((TOP / "playbooks" / "vars" / "phases.yml").read_text(encoding="utf-8"))
    [entry] = [item for item in settings["_llm_stack_secret_settings"] if item["setting"] == "user"]
    copy = redis_conf()
    rotated = "rotated-redis\\password-0123"
    lines = []
    for line in copy.splitlines():
        found = re.search(entry["regexp"], line)
        lines.append(found.expand(entry["line"] + rotated.replace("\\", "\\\\")) if found else line)
    assert users("\n".join(lines))["llm-gateway"] == [*users(copy)["llm-gateway"][:-1], f">{rotated}"]
    assert users("\n".join(lines))["default"] == ["off"]


# ---------------------------------------------------------------------------------------------------------
# The gateway connects as that user, for the cache and for the router's shared state


def litellm(name: str, **settings: object) -> dict:
    return _template(_variables("litellm", **settings), "{{ " + name + " }}")


def test_the_cache_connects_as_the_user() -> None:
    cache = litellm("_litellm_settings")["cache_params"]
    assert cache["username"] == "llm-gateway"
    assert cache["password"] == "os.environ/REDIS_PASSWORD"
    assert cache["namespace"] == "llm_stack"


def test_the_shared_router_state_connects_as_the_user_under_the_namespace() -> None:
    router = litellm("_litellm_router_settings", litellm_router_shared_state=True, litellm_cache_namespace="lab")
    assert router["redis_password"] == "os.environ/REDIS_PASSWORD"
    # The Router has no redis_username; its cache_kwargs reach the RedisCache it builds.
    assert router["cache_kwargs"] == {"namespace": "lab", "username": "llm-gateway"}


def test_without_a_user_the_password_alone_is_sent() -> None:
    settings = {"litellm_router_shared_state": True, "litellm_cache_redis_username": ""}
    assert "username" not in litellm("_litellm_settings", **settings)["cache_params"]
    assert litellm("_litellm_router_settings", **settings)["cache_kwargs"] == {"namespace": "llm_stack"}


def test_without_shared_state_the_router_has_no_redis_of_its_own() -> None:
    router = litellm("_litellm_router_settings")
    assert not {"redis_host", "redis_password", "cache_kwargs"} & set(router)


def test_every_secret_setting_renders_in_the_rollback_task() -> None:
    """Each entry as playbooks/tasks/rollback_secrets.yml templates it (default()'s argument is evaluated too)."""
    task = yaml.safe_load((TOP / "playbooks" / "tasks" / "rollback_secrets.yml").read_text(encoding="utf-8"))
    [refresh] = [step for step in task if "ansible.builtin.lineinfile" in step]
    arguments = refresh["ansible.builtin.lineinfile"]
    settings = DataLoader().load_from_file(str(TOP / "playbooks" / "vars" / "phases.yml"), trusted_as_template=True)
    for entry in settings["_llm_stack_secret_settings"]:
        variables = {"item": ["/home/llm-stack/.config/llm-stack/x.env", {**entry, "value": "s3cret"}]}
        for name in ("regexp", "line"):
            assert isinstance(_template(variables, arguments[name]), str), (entry["setting"], name)
