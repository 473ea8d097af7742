# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's optional TLS (catalog gateway.tls, security issue #13): the plan's HTTPS records, the
catalog's refusals, the controller-side checks of the PEM files before any host is contacted, and the
unit's ExecStart."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.labai.llm_stack.plugins.plugin_utils._tls_files import tls_file_problems
from ansible_collections.labai.llm_stack.plugins.plugin_utils.plan import CatalogError, build_plan
from tls_certificates import issue
from unit_templates import exec_start as unit_exec_start
from unit_templates import render_unit

WHERE = "llm_stack_catalog.gateway.tls"
PATH_FIX = "give the absolute controller path of the PEM file, such as /etc/llm-stack/gateway-{}.pem"


def catalog(tls: object = None, bind: str | None = None) -> dict:
    gateway: dict = {"port": 4000}
    if tls is not None:
        gateway["tls"] = tls
    if bind:
        gateway["bind"] = bind
    return {
        "gateway": gateway,
        "models": [{"name": "cpp", "backend": "llamacpp", "model_file": "/srv/models/cpp.gguf", "port": 8000}],
    }


def records(plan: dict) -> dict[str, dict]:
    return {record["backend"]: record for record in plan["hosts"]["gpu01"]["services"]}


def gateway_record(files: dict, bind: str | None = None) -> dict:
    return records(build_plan(catalog(files, bind), ["gpu01"]))["litellm"]


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(CatalogError) as exc:
        build_plan(raw, ["gpu01"])
    return exc.value.problems


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    return issue(tmp_path / "tls")


def test_without_tls_every_record_is_plain_http():
    found = records(build_plan(catalog(), ["gpu01"]))
    assert found["litellm"]["probe_url"] == "http://127.0.0.1:4000"
    assert found["litellm"]["tls"] == {} and found["litellm"]["ca_path"] == ""


def test_tls_makes_the_gateway_https_and_says_where_its_files_go(files):
    found = records(build_plan(catalog(files), ["gpu01"]))
    gateway = found["litellm"]
    assert gateway["probe_url"] == "https://127.0.0.1:4000"
    assert gateway["api_base"] == "https://127.0.0.1:4000/v1"
    assert gateway["tls"] == {
        "sources": files,
        "certificate": "litellm/tls/certificate.pem",
        "private_key": "litellm/tls/private_key.pem",
        "ca_file": "/etc/llm-stack/gateway-ca.pem",
    }
    assert gateway["ca_path"] == "/etc/llm-stack/gateway-ca.pem"
    # The backends behind it keep their own scheme.
    assert found["llamacpp"]["probe_url"] == "http://127.0.0.1:8000"
    assert found["llamacpp"]["ca_path"] == ""


def test_without_a_ca_the_hosts_store_verifies_the_gateway(files):
    del files["ca_certificate"]
    gateway = gateway_record(files)
    assert gateway["tls"]["ca_file"] == "" and gateway["ca_path"] == ""


@pytest.mark.parametrize(
    ("tls", "problems"),
    [
        (
            {"certificate": "/a.crt"},
            ["gateway.tls.private_key: is missing; give the controller path of the gateway's private_key (PEM)"],
        ),
        (
            {"certificate": "a.crt", "private_key": "/a.key"},
            ["gateway.tls.certificate: 'a.crt' is not an absolute path; " + PATH_FIX.format("certificate")],
        ),
        (
            {"certificate": "/a.crt", "private_key": "/a.key", "key": "/b"},
            ["gateway.tls: unknown field 'key'; remove it or use one of: certificate, private_key, ca_certificate"],
        ),
        (
            "/a.crt",
            [
                "gateway.tls: expected a mapping, got a string; write tls as {certificate: /path/gateway.crt, "
                "private_key: /path/gateway.key}, paths on the controller"
            ],
        ),
        (
            {"certificate": "/a.crt", "private_key": "/a\n.key"},
            [
                "gateway.tls.private_key: '/a\\n.key' holds a control character (U+000A); remove the control character "
                "(the value is written into a unit or env file)"
            ],
        ),
    ],
)
def test_bad_tls_settings_are_refused(tls, problems):
    assert problems_of(catalog(tls)) == problems


def test_good_files_pass(files):
    assert tls_file_problems([gateway_record(files)]) == []


def test_a_missing_file_is_named(files):
    Path(files["ca_certificate"]).unlink()
    assert tls_file_problems([gateway_record(files)]) == [
        (
            f"{WHERE}.ca_certificate",
            (
                f"{files['ca_certificate']!r} does not exist on the controller",
                "point gateway.tls.ca_certificate at the PEM file on the controller",
            ),
        ),
    ]


def test_a_certificate_that_does_not_cover_the_address_the_gateway_is_probed_at(tmp_path):
    files = issue(tmp_path / "tls", names="DNS:gateway.example")
    [(name, (what, fix))] = tls_file_problems([gateway_record(files)])
    assert name == f"{WHERE}.certificate"
    assert what == f"{files['certificate']!r} does not cover 127.0.0.1 (it holds DNS:gateway.example)"
    assert fix == "issue the gateway a certificate whose subjectAltName holds 127.0.0.1"


def test_a_gateway_on_a_private_address_needs_that_address_in_its_certificate(files):
    [(_, (what, _))] = tls_file_problems([gateway_record(files, bind="10.0.0.5")])
    assert what.endswith("does not cover 10.0.0.5 (it holds IP Address:127.0.0.1, DNS:localhost)")


def test_an_expired_certificate_is_refused(files):
    [(_, (what, fix))] = tls_file_problems([gateway_record(files)], now=4102444800)  # 2100
    assert what.startswith(f"{files['certificate']!r} expired on ")
    assert fix == "renew the gateway's certificate"


def test_a_key_of_another_certificate_is_refused(files, tmp_path):
    files["private_key"] = issue(tmp_path / "other")["private_key"]
    [(name, (what, _))] = tls_file_problems([gateway_record(files)])
    assert name == f"{WHERE}.private_key"
    assert what.startswith(f"{files['private_key']!r} is not the key of {files['certificate']!r}")


def test_a_vault_encrypted_key_is_only_checked_for_being_there(files):
    Path(files["private_key"]).write_text("$ANSIBLE_VAULT;1.1;AES256\n3132\n")
    assert tls_file_problems([gateway_record(files)]) == []


def exec_start(record: dict) -> list[str]:
    return unit_exec_start(
        render_unit(
            "litellm",
            record,
            _litellm_workers=2,
            _litellm_venv="/venv",
            _litellm_config="/cfg/config.yaml",
            _litellm_root="/root",
        )
    )


def test_the_unit_serves_tls_with_the_installed_files(files):
    argv = exec_start(gateway_record(files))
    assert argv[argv.index("--ssl_certfile_path") + 1] == "/home/llm-stack/.config/litellm/tls/certificate.pem"
    assert argv[argv.index("--ssl_keyfile_path") + 1] == "/home/llm-stack/.config/litellm/tls/private_key.pem"


def test_the_unit_without_tls_has_no_ssl_flags():
    argv = exec_start(records(build_plan(catalog(), ["gpu01"]))["litellm"])
    assert argv[:2] == ["/venv/bin/litellm", "--config"]
    assert not [arg for arg in argv if arg.startswith("--ssl")]
