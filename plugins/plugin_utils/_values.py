# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Describing catalog values in messages, and the rules a setting's value must follow."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
NAME_FIX = "use letters, digits and . _ : / - (starting with a letter or digit)"
# C0 and C1 control characters (line breaks, tabs, NUL, ESC, DEL...): a unit or env file line cannot hold them.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_FIX = "remove the control character (the value is written into a unit or env file)"


def is_mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def is_list(value: object) -> bool:
    return isinstance(value, (list, tuple))


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def kind(value: object) -> str:
    """The YAML kind of a value, with its article: 'a string', 'an integer', 'null'."""
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"))
    for python_type, kind in kinds:
        if isinstance(value, python_type):
            return kind
    if is_list(value):
        return "a list"
    if is_mapping(value):
        return "a mapping"
    return f"a {type(value).__name__}"


def show(value: object) -> str:
    """A scalar as YAML would spell it ('name', 8001, true, null); other values by their kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(str(value))
    return kind(value)


def plain(value: object) -> object:
    """A copy made of plain dict, list, str, int, float and bool (no Ansible-tagged subclasses)."""
    if is_mapping(value):
        return {str(key): plain(item) for key, item in value.items()}
    if is_list(value):
        return [plain(item) for item in value]
    for python_type in (bool, int, float, str):
        if isinstance(value, python_type):
            return python_type(value)
    return value


def slug(name: str) -> str:
    """The unit-name form of a public name: lowercase, runs of other characters become '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def control_problem(value: str) -> str | None:
    """What is wrong with a string holding a control character, naming the first one; None when it holds none."""
    found = CONTROL.search(value)
    if found is None:
        return None
    return f"{value!r} holds a control character (U+{ord(found.group()):04X})"


def name_problem(value: str) -> tuple[str, str] | None:
    """What is wrong with a public name or alias, and how to fix it; None when it is fine."""
    if not value:
        return "the name is empty", "give it a public name such as qwen-coder"
    if len(value) > 128:
        return f"{value[:40]!r}... is longer than 128 characters", "use a shorter name"
    if not NAME_PATTERN.fullmatch(value):
        return f"{value!r} has characters the gateway cannot route", NAME_FIX
    return None


# ---------------------------------------------------------------------------------------------------------
# Settings blocks: one rule per known key (default, check, fix)

# value -> [(field suffix, what is wrong)], or (field suffix, what is wrong, how to fix it) where the rule's fix
# does not fit the problem.
Check = Callable[[object], list[tuple[str, ...]]]


@dataclass(frozen=True)
class Rule:
    default: object
    check: Check
    fix: str
    normalise: Callable[[object], object] = plain


def positive_int(value: object) -> list[tuple[str, str]]:
    if is_int(value) and value > 0:
        return []
    return [("", f"{show(value)} is not a positive integer")]


def int_at_least(minimum: int) -> Check:
    def check(value: object) -> list[tuple[str, str]]:
        if is_int(value) and value >= minimum:
            return []
        return [("", f"{show(value)} is not an integer of {minimum} or more")]

    return check


def positive_number(value: object) -> list[tuple[str, str]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return []
    return [("", f"{show(value)} is not a number greater than 0")]


def gpu_indexes(value: object) -> list[tuple[str, str]]:
    """A list of distinct GPU indexes, as nvidia-smi numbers the GPUs (0, 1, ...)."""
    if not is_list(value):
        return [("", f"expected a list of GPU indexes, got {kind(value)}")]
    if not value:
        return [("", "the list is empty")]
    problems, seen = [], set()
    for index, item in enumerate(value):
        if not is_int(item) or item < 0:
            problems.append((f"[{index}]", f"{show(item)} is not a GPU index (an integer of 0 or more)"))
        elif item in seen:
            problems.append((f"[{index}]", f"GPU {item} is listed twice"))
        else:
            seen.add(item)
    return problems


def fraction(value: object) -> list[tuple[str, str]]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1:
        return []
    return [("", f"{show(value)} is not a number greater than 0 and at most 1")]


def one_of(label: str, choices: tuple[str, ...]) -> Check:
    def check(value: object) -> list[tuple[str, str]]:
        if isinstance(value, str) and value in choices:
            return []
        return [("", f"{show(value)} is not a known {label}")]

    return check


def _controls(suffix: str, value: str) -> list[tuple[str, ...]]:
    what = control_problem(value)
    return [(suffix, what, CONTROL_FIX)] if what else []


def string(value: object) -> list[tuple[str, ...]]:
    if not isinstance(value, str):
        return [("", f"expected a string, got {kind(value)}")]
    return _controls("", value)


def absolute_path(value: object) -> list[tuple[str, ...]]:
    if not isinstance(value, str):
        return [("", f"expected a string, got {kind(value)}")]
    if not posixpath.isabs(value):
        return [("", f"{value!r} is not an absolute path")]
    return _controls("", value)


def strings(value: object) -> list[tuple[str, ...]]:
    """A list of strings, none with a control character."""
    if not is_list(value):
        return [("", f"expected a list of strings, got {kind(value)}")]
    problems: list[tuple[str, ...]] = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            problems.extend(_controls(f"[{index}]", item))
        else:
            problems.append((f"[{index}]", f"expected a string, got {kind(item)}"))
    return problems


def nullable(check: Check) -> Check:
    return lambda value: [] if value is None else check(value)


def url(value: object) -> list[tuple[str, ...]]:
    if isinstance(value, str) and CONTROL.search(value):
        return _controls("", value)
    if isinstance(value, str) and re.fullmatch(r"(https?|file)://[^\s]+", value):
        return []
    return [("", f"{show(value)} is not an http(s):// or file:// URL")]


def checksum(value: object) -> list[tuple[str, str]]:
    if isinstance(value, str) and re.fullmatch(r"sha256:[0-9a-fA-F]{64}", value):
        return []
    return [("", f"{show(value)} is not a sha256 checksum")]


def revision(value: object) -> list[tuple[str, ...]]:
    """A revision of a Hugging Face model repository (a commit hash or a tag), as one word of a command line."""
    if not isinstance(value, str):
        return [("", f"expected a string, got {kind(value)}")]
    if CONTROL.search(value):
        return _controls("", value)
    if not value:
        return [("", "the value is empty")]
    if re.search(r"\s", value):
        return [("", f"{value!r} holds whitespace")]
    if value.startswith("-"):
        return [("", f"{value!r} starts with '-', so vLLM would read it as a flag")]
    return []


def ollama_digest(value: object) -> list[tuple[str, str]]:
    """The digest Ollama lists for a model on /api/tags: 64 hex digits, 'sha256:' before them or not."""
    if isinstance(value, str) and re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", value):
        return []
    return [("", f"{show(value)} is not a sha256 digest")]


def digest_hex(value: object) -> object:
    """A digest as Ollama lists it on /api/tags: 64 lowercase hex digits, without 'sha256:'."""
    return value.removeprefix("sha256:").lower() if isinstance(value, str) else value


# A bind address that is each host's own: the address in its llm_stack_address inventory variable.
HOST_ADDRESS = "llm_stack_address"


def ip_address(value: object) -> list[tuple[str, str]]:
    """An IPv4 or IPv6 address to listen on: loopback, a private address, or 0.0.0.0 / :: for every interface
    (or HOST_ADDRESS, each host's own)."""
    if value == HOST_ADDRESS:
        return []
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
            return []
        except ValueError:
            pass
    return [("", f"{show(value)} is not an IP address")]


def address_kind(address: str) -> str:
    """'loopback', 'any' (every interface), 'specific', or 'host' (HOST_ADDRESS) for an address ip_address()
    accepted."""
    if address == HOST_ADDRESS:
        return "host"
    parsed = ipaddress.ip_address(address)
    if parsed.is_loopback:
        return "loopback"
    if parsed.is_unspecified:
        return "any"
    return "specific"


# Where a service without TLS (Redis) may listen: loopback, RFC 1918 and IPv6 unique local addresses.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
PRIVATE_RANGES = "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or an IPv6 unique local address, fc00::/7"


def network_kind(address: str) -> str:
    """'loopback', 'private' (RFC 1918, IPv6 unique local), 'any' (every interface) or 'public' (anything
    else, link-local and reserved addresses too) for an IP address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "public"
    if parsed.is_unspecified:
        return "any"
    if parsed.is_loopback:
        return "loopback"
    return "private" if any(parsed in network for network in PRIVATE_NETWORKS) else "public"


def url_host(address: str) -> str:
    """An address as it stands in a URL: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def below_top_level(path: str) -> bool:
    """True for a directory at least two levels below / (/srv/models, not /srv or /)."""
    return len([part for part in posixpath.normpath(path).split("/") if part]) >= 2
