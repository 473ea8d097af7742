# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The python_venv role keeps package index settings, credentials included, off every command line.

The role runs for real on this machine (local connection, no become, the apt step left out) against three
package indexes served here over HTTP with Basic auth: the main index, PyTorch's stand-in (torch 1.0+cpu),
and an extra index that a global pip configuration adds, as an /etc/pip.conf could. The main index also
offers torch 9.9, the package dependency confusion would install. Every request the indexes answer takes a
snapshot of every process's command line on the machine, pip's own included.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import html
import json
import os
import pwd
import re
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

TOP = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MAIN_PASSWORD = "main-s3cret-7f3a9c"
TORCH_PASSWORD = "torch-s3cret-91bc2e"
EXTRA_PASSWORD = "extra-s3cret-4d6e0a"
PLAY = """\
- name: Run the python_venv role here
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Install the virtualenv
      ansible.builtin.include_role:
        name: labai.llm_stack.python_venv
"""
# Each case: one setting the role refuses, run in check mode; the message it must give.
CASES_PLAY = """\
- name: Run the python_venv role with each refused setting
  hosts: localhost
  gather_facts: false
  vars:
    refusals: {}
  tasks:
    - name: Run one case
      ansible.builtin.include_tasks: case.yml
      loop: "{{ cases }}"
      loop_control:
        loop_var: case
        label: "{{ case.name }}"
    - name: Write what each case was told
      ansible.builtin.copy:
        content: "{{ refusals | to_json }}"
        dest: "{{ refusals_file }}"
        mode: "0600"
      check_mode: false
"""
CASE_TASKS = """\
- name: Run the role
  block:
    - name: Include the role
      ansible.builtin.include_role:
        name: labai.llm_stack.python_venv
      vars:
        python_venv_pip_options: "{{ case.pip_options | default({}) }}"
        python_venv_torch_index_url: "{{ case.torch_index_url | default('') }}"
        python_venv_torch_packages: "{{ case.torch_packages | default([]) }}"
        python_venv_environment: "{{ case.environment | default({}) }}"
    - name: Record that the role ran
      ansible.builtin.set_fact:
        refusals: "{{ refusals | combine({case.name: 'accepted'}) }}"
  rescue:
    - name: Record the refusal
      ansible.builtin.set_fact:
        refusals: "{{ refusals | combine({case.name: ansible_failed_result.msg}) }}"
"""
EXTRA_INDEX_REFUSED = (
    "python_venv_pip_options.extra_index_urls is refused: pip takes each package from whichever index offers "
    "the highest version, so a same-named package on one index replaces the one meant from the other "
    "(dependency confusion). Mirror what you need on index_url, use a wheelhouse (find_links with no_index), "
    "or, for PyTorch's CPU build, set python_venv_torch_index_url (vllm_torch_index_url for the vllm role) "
    "and python_venv_torch_packages: those packages alone are then installed from that index, in a step of "
    "their own."
)
INDEX_SETTINGS_REFUSED = (
    "python_venv_pip_options may only hold index_url, find_links, no_index, cert (got {keys}): index_url an "
    "http(s):// or file:// URL, find_links a list of directories or URLs, no_index true or false, cert the "
    "absolute path of a CA bundle on the host; none of them with spaces or line breaks."
)
TORCH_REFUSED = (
    "python_venv_torch_index_url must be an http(s):// or file:// URL without spaces, given together with "
    "python_venv_torch_packages (the packages installed from it alone, such as torch==2.13.0+cpu), and not "
    "with python_venv_pip_options.no_index (which forbids every index)."
)
ENVIRONMENT_REFUSED = (
    "python_venv_environment must not set PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CONFIG_FILE: a task's "
    "environment shows on the host's process list. Use python_venv_pip_options (written to the 0600 "
    "<venv>/pip.conf) instead."
)


def make_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel of one module that knows its version, built without any build backend."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'VERSION = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def command_lines() -> list[str]:
    """Every process's command line on this machine, arguments joined by spaces."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return lines


@dataclass
class Index:
    """A PEP 503 simple index of wheels behind Basic auth, recording what it is asked."""

    name: str
    user: str
    password: str
    wheels: list[Path]
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    seen_command_lines: set[str] = field(default_factory=set)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}/simple/"

    def start(self) -> ThreadingHTTPServer:
        index = self
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def send(self, status: int, body: bytes, content_type: str = "text/html") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                index.seen_command_lines.update(command_lines())
                if self.headers.get("Authorization") != expected:
                    index.refused.append(self.path)
                    self.send(401, b"")
                    return
                index.requests.append(self.path)
                if match := re.fullmatch(r"/simple/([^/]+)/", self.path):
                    project = match.group(1)
                    links = [
                        f'<a href="/files/{quote(wheel.name)}">{html.escape(wheel.name)}</a>'
                        for wheel in index.wheels
                        if wheel.name.split("-")[0].replace("_", "-") == project
                    ]
                    self.send(200 if links else 404, "\n".join(links).encode())
                elif match := re.fullmatch(r"/files/([^/]+)", self.path):
                    wheel = next((w for w in index.wheels if w.name == unquote(match.group(1))), None)
                    if wheel is None:
                        self.send(404, b"")
                        return
                    index.downloads.append(wheel.name)
                    self.send(200, wheel.read_bytes(), "application/octet-stream")
                else:
                    self.send(404, b"")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Run:
    returncode: int
    output: str


@dataclass
class Lab:
    work: Path
    env: dict[str, str]
    main: Index
    torch: Index
    extra: Index
    runs: int = 0

    @property
    def indexes(self) -> list[Index]:
        return [self.main, self.torch, self.extra]

    def playbook(self, play: str, variables: dict, *options: str) -> Run:
        (self.work / "play.yml").write_text(play)
        (self.work / "vars.json").write_text(json.dumps(variables))
        result = subprocess.run(
            [
                *(str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-vvv", *options),
                *(str(self.work / "play.yml"), "-e", f"@{self.work / 'vars.json'}"),
            ],
            cwd=TOP,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.runs += 1
        (self.work / f"run-{self.runs}.log").write_text(result.stdout + result.stderr)
        return Run(result.returncode, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    work = tmp_path_factory.mktemp("python_venv")
    wheels = work / "wheels"
    wheels.mkdir()
    torch_cpu = make_wheel(wheels, "torch", "1.0+cpu")
    torch_confused = make_wheel(wheels, "torch", "9.9")
    app = make_wheel(wheels, "demo-app", "1.0", ("torch>=1.0",))
    main = Index("main", "mainuser", MAIN_PASSWORD, [app, torch_confused])
    torch = Index("torch", "torchuser", TORCH_PASSWORD, [torch_cpu])
    extra = Index("extra", "extrauser", EXTRA_PASSWORD, [torch_confused])
    servers = [index.start() for index in (main, torch, extra)]
    # A global pip configuration (XDG_CONFIG_DIRS/pip/pip.conf) adds an extra index, as /etc/pip.conf may.
    (work / "xdg" / "pip").mkdir(parents=True)
    (work / "xdg" / "pip" / "pip.conf").write_text(f"[global]\nextra-index-url = {extra.url}\n")
    (work / "home").mkdir()
    (work / "no-wheels").mkdir()
    # Nothing of this machine's own pip or Ansible settings: only the repository's ansible.cfg.
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PIP_", "ANSIBLE_"))}
    env |= {
        "ANSIBLE_CONFIG": str(TOP / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "HOME": str(work / "home"),
        "XDG_CONFIG_DIRS": str(work / "xdg"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # pip would ask pypi.org for its latest version once the role leaves the indexes to pip's defaults.
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    yield Lab(work, env, main, torch, extra)
    for server in servers:
        server.shutdown()


def base_vars(root: Path) -> dict:
    """This machine as the host, this user as the owner, and no apt step."""
    return {
        "ansible_become": False,
        "ansible_python_interpreter": sys.executable,
        "python_venv_root": str(root),
        "python_venv_owner": pwd.getpwuid(os.getuid()).pw_name,
        "python_venv_system_packages": [],
        "python_venv_packages": ["demo-app==1.0"],
    }


def role_vars(lab: Lab, root: Path, **overrides: object) -> dict:
    return (
        base_vars(root)
        | {
            "python_venv_pip_options": {"index_url": lab.main.url, "find_links": [str(lab.work / "no-wheels")]},
            "python_venv_torch_index_url": lab.torch.url,
            "python_venv_torch_packages": ["torch==1.0+cpu"],
        }
        | overrides
    )


def pip_config(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    parser.read_string(path.read_text())
    return dict(parser["global"])


@dataclass
class Deployment:
    venv: Path
    cleared_venv: Path
    first: Run
    second: Run
    cleared: Run
    config_after_install: dict[str, dict]
    torch_version: str
    files_with_secrets: dict[str, list[str]]
    extra_index_asked: list[str]


@pytest.fixture(scope="module")
def deployment(lab: Lab) -> Deployment:
    """Install, install again, then run with no index settings at all (and no torch step: another virtualenv)."""
    root = lab.work / "venv"
    first = lab.playbook(PLAY, role_vars(lab, root))
    assert first.returncode == 0, first.output
    [venv] = root.glob("venv-*")
    config = {}
    for name in ("pip.conf", "pip-torch.conf"):
        if (venv / name).exists():
            status = (venv / name).stat()
            config[name] = {"mode": status.st_mode & 0o777, "uid": status.st_uid, "settings": pip_config(venv / name)}
    torch_version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch; print(torch.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    files_with_secrets: dict[str, list[str]] = {MAIN_PASSWORD: [], TORCH_PASSWORD: []}
    for path in [*venv.rglob("*"), *(lab.work / "home").rglob("*")]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            for secret, found in files_with_secrets.items():
                if secret.encode() in data:
                    found.append(str(path.relative_to(lab.work)))
    second = lab.playbook(PLAY, role_vars(lab, root))
    extra_index_asked = lab.extra.requests + lab.extra.refused
    # Without the torch step, the packages make another virtualenv, which pip fills from the wheelhouse named in
    # its environment: no index setting is left for a config file.
    cleared = lab.playbook(
        PLAY,
        role_vars(
            lab,
            root,
            python_venv_pip_options={},
            python_venv_torch_index_url="",
            python_venv_torch_packages=[],
            python_venv_environment={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(lab.work / "wheels")},
        ),
    )
    [cleared_venv] = [path for path in root.glob("venv-*") if path != venv]
    return Deployment(
        venv, cleared_venv, first, second, cleared, config, torch_version, files_with_secrets, extra_index_asked
    )


def test_no_command_line_holds_an_index(lab: Lab, deployment: Deployment) -> None:
    seen = set().union(*(index.seen_command_lines for index in lab.indexes))
    for index in lab.indexes:
        shown = [line for line in seen if f"127.0.0.1:{index.port}" in line or index.password in line]
        assert shown == [], f"the {index.name} index is on a command line: {shown}"
    # The snapshots did catch pip at work: its command line names what it installs.
    assert any("demo-app==1.0" in line and "install" in line for line in seen), sorted(seen)
    assert any("torch==1.0+cpu" in line and "install" in line for line in seen), sorted(seen)


def test_ansible_output_holds_no_credentials(lab: Lab, deployment: Deployment) -> None:
    """At -vvv, where every task's arguments, the pip module's cmd and pip's own output show."""
    commands = re.findall(r"^ +cmd:\n((?: +- .*\n)+)", deployment.first.output, re.MULTILINE)
    # pip's two installs, besides the role's question of which Python makes the virtualenv.
    assert len([command for command in commands if "- install\n" in command]) == 2, commands
    for run in (deployment.first, deployment.second, deployment.cleared):
        for index in lab.indexes:
            assert index.password not in run.output
            assert [command for command in commands if f"127.0.0.1:{index.port}" in command] == []


def test_pip_reads_the_credentials_from_the_virtualenv_config(lab: Lab, deployment: Deployment) -> None:
    assert "/files/demo_app-1.0-py3-none-any.whl" in lab.main.requests
    assert lab.torch.downloads == ["torch-1.0+cpu-py3-none-any.whl"]
    assert lab.main.refused == [] and lab.torch.refused == []


def test_torch_comes_from_its_own_index_alone(lab: Lab, deployment: Deployment) -> None:
    """demo-app wants torch>=1.0; the main index and the global extra index both offer torch 9.9."""
    assert deployment.torch_version == "1.0+cpu"
    assert "torch-9.9-py3-none-any.whl" not in lab.main.downloads
    assert deployment.extra_index_asked == []
    assert lab.torch.requests
    assert all(path.startswith(("/simple/torch/", "/files/torch-")) for path in lab.torch.requests)


def test_the_config_files_hold_the_index_settings_for_the_owner_alone(lab: Lab, deployment: Deployment) -> None:
    assert deployment.config_after_install == {
        "pip.conf": {
            "mode": 0o600,
            "uid": os.getuid(),
            "settings": {
                "index-url": lab.main.url,
                "extra-index-url": "",
                "find-links": f"\n{lab.work / 'no-wheels'}",
            },
        },
        "pip-torch.conf": {
            "mode": 0o600,
            "uid": os.getuid(),
            "settings": {"index-url": lab.torch.url, "extra-index-url": "", "find-links": ""},
        },
    }
    venv = deployment.venv.relative_to(deployment.venv.parents[1])
    assert deployment.files_with_secrets == {
        MAIN_PASSWORD: [f"{venv}/pip.conf"],
        TORCH_PASSWORD: [f"{venv}/pip-torch.conf"],
    }


def test_a_second_run_changes_nothing(deployment: Deployment) -> None:
    assert deployment.second.returncode == 0, deployment.second.output
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", deployment.second.output), deployment.second.output


def test_without_index_settings_no_config_file_is_left(deployment: Deployment) -> None:
    assert deployment.cleared.returncode == 0, deployment.cleared.output
    assert not (deployment.cleared_venv / "pip.conf").exists()
    assert not (deployment.cleared_venv / "pip-torch.conf").exists()
    assert (deployment.cleared_venv / "bin" / "python").exists()


def test_other_packages_install_a_virtualenv_of_their_own_beside_the_first(deployment: Deployment) -> None:
    """Named by the sha256 of its stamp; the first one, which an earlier unit would name, is left as it was."""
    for venv in (deployment.venv, deployment.cleared_venv):
        stamp = (venv / "llm-stack-requirements.txt").read_bytes()
        assert venv.name == "venv-" + hashlib.sha256(stamp).hexdigest()[:12]
    assert (deployment.venv / "llm-stack-requirements.txt").read_text().startswith("torch==1.0+cpu (torch index)\n")
    assert b"torch" not in (deployment.cleared_venv / "llm-stack-requirements.txt").read_bytes()
    assert (deployment.venv / "pip.conf").exists()
    assert (deployment.venv / "bin" / "python").exists()


def test_check_mode_writes_nothing(lab: Lab, deployment: Deployment) -> None:
    root = lab.work / "check-mode-venv"
    asked = sum(len(index.requests) + len(index.refused) for index in lab.indexes)
    run = lab.playbook(PLAY, role_vars(lab, root), "--check", "--diff")
    assert run.returncode == 0, run.output
    assert not root.exists()
    assert sum(len(index.requests) + len(index.refused) for index in lab.indexes) == asked
    for index in lab.indexes:
        assert index.password not in run.output


REFUSALS = {
    "extra index": (
        {"pip_options": {"extra_index_urls": ["https://download.pytorch.org/whl/cpu"]}},
        EXTRA_INDEX_REFUSED,
    ),
    "extra index with others": (
        {"pip_options": {"index_url": "https://pypi.example/simple", "extra_index_urls": ["https://x.example/simple"]}},
        EXTRA_INDEX_REFUSED,
    ),
    "a line break that would add a setting": (
        {"pip_options": {"index_url": f"https://u:{MAIN_PASSWORD}@pypi.example/simple\nextra-index-url = http://x"}},
        INDEX_SETTINGS_REFUSED.format(keys="index_url"),
    ),
    "find_links a string": (
        {"pip_options": {"find_links": "/srv/wheels"}},
        INDEX_SETTINGS_REFUSED.format(keys="find_links"),
    ),
    "no_index a string": ({"pip_options": {"no_index": "yes"}}, INDEX_SETTINGS_REFUSED.format(keys="no_index")),
    "an unknown key": ({"pip_options": {"trusted_host": "x"}}, INDEX_SETTINGS_REFUSED.format(keys="trusted_host")),
    "torch index without packages": ({"torch_index_url": "https://download.pytorch.org/whl/cpu"}, TORCH_REFUSED),
    "torch packages without an index": ({"torch_packages": ["torch==2.13.0+cpu"]}, TORCH_REFUSED),
    "torch index and no_index": (
        {
            "pip_options": {"find_links": ["/srv/wheels"], "no_index": True},
            "torch_index_url": "https://download.pytorch.org/whl/cpu",
            "torch_packages": ["torch==2.13.0+cpu"],
        },
        TORCH_REFUSED,
    ),
    "index in the environment": (
        {"environment": {"PIP_INDEX_URL": "https://pypi.example/simple"}},
        ENVIRONMENT_REFUSED,
    ),
}


@pytest.fixture(scope="module")
def refusals(lab: Lab) -> tuple[Run, dict[str, str], bool]:
    """Every case in one check-mode run; none may create the virtualenv's directory."""
    venv = lab.work / "refused-venv"
    (lab.work / "case.yml").write_text(CASE_TASKS)
    cases = [{"name": name, **settings} for name, (settings, _) in REFUSALS.items()]
    told = lab.work / "refusals.json"
    # Extra vars outrank the include's vars: the settings under test are left to each case.
    run = lab.playbook(CASES_PLAY, base_vars(venv) | {"cases": cases, "refusals_file": str(told)}, "--check")
    assert run.returncode == 0, run.output
    return run, json.loads(told.read_text()), venv.exists()


@pytest.mark.parametrize("case", REFUSALS)
def test_the_role_refuses(refusals: tuple[Run, dict[str, str], bool], case: str) -> None:
    run, told, venv_made = refusals
    assert told[case] == REFUSALS[case][1]
    assert not venv_made
    assert MAIN_PASSWORD not in run.output
