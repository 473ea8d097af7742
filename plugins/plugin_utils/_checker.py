# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collecting catalog problems, each as ``<location>.<field>: <what is wrong>; <how to fix it>``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import (
    CONTROL_FIX,
    Rule,
    control_problem,
    is_int,
    is_list,
    is_mapping,
    kind,
    plain,
    show,
    strings,
)

CATALOG = "llm_stack_catalog"
PORT_FIX = "use a free TCP port between 1 and 65535"


class CatalogError(ValueError):
    """The catalog is invalid; ``problems`` lists every problem found, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{CATALOG} is invalid ({count} problem{'' if count == 1 else 's'}):"
        super().__init__(header + "".join(f"\n  - {problem}" for problem in self.problems))


class Checker:
    """Collects problems while the catalog is read."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, field_name: str, what: str, fix: str) -> None:
        location = f"{where}.{field_name}" if field_name else where
        self.problems.append(f"{location}: {what}; {fix}")

    def add_all(self, where: str, field_name: str, problems: list[tuple[str, ...]], fix: str) -> None:
        """A check's (suffix, what) problems with ``fix``, and its (suffix, what, fix) ones with their own."""
        for suffix, what, *own_fix in problems:
            self.add(where, field_name + suffix, what, own_fix[0] if own_fix else fix)

    def unknown_fields(self, where: str, mapping: Mapping, known: tuple[str, ...]) -> None:
        for key in mapping:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
            fix = f"did you mean {close[0]!r}?" if close else "remove it or use one of: " + ", ".join(known)
            self.problems.append(f"{where}: unknown field {show(key)}; {fix}")

    def mapping(self, where: str, field_name: str, value: object, fix: str) -> bool:
        if is_mapping(value):
            return True
        self.add(where, field_name, f"expected a mapping, got {kind(value)}", fix)
        return False

    def port(self, where: str, field_name: str, value: object) -> int | None:
        if not is_int(value):
            self.add(where, field_name, f"{show(value)} is not an integer", PORT_FIX)
        elif not 1 <= value <= 65535:
            self.add(where, field_name, f"{value} is outside 1-65535", PORT_FIX)
        else:
            return int(value)
        return None

    def string(self, where: str, field_name: str, value: object, fix: str) -> str | None:
        if not isinstance(value, str):
            self.add(where, field_name, f"expected a string, got {kind(value)}", fix)
        elif not value.strip():
            self.add(where, field_name, "the value is empty", fix)
        elif control_problem(value):
            self.add(where, field_name, control_problem(value), CONTROL_FIX)
        else:
            return str(value)
        return None

    def strings(self, where: str, field_name: str, value: object, fix: str) -> list[tuple[int, str]]:
        """The (index, string) items of a list of strings, reporting the rest."""
        problems = strings(value)
        self.add_all(where, field_name, problems, fix)
        if not is_list(value):
            return []
        refused = {suffix for suffix, *_ in problems}
        return [
            (index, str(item))
            for index, item in enumerate(value)
            if isinstance(item, str) and f"[{index}]" not in refused
        ]

    def hosts(self, where: str, raw: Mapping, play_hosts: list[str] | None) -> list[str]:
        """The hosts a service runs on: the 'hosts' field, or every host of the play."""
        if "hosts" not in raw:
            return list(play_hosts or [])
        fix = "use an inventory hostname"
        items = self.strings(where, "hosts", raw["hosts"], fix)
        if is_list(raw["hosts"]) and not raw["hosts"]:
            self.add(where, "hosts", "the list is empty", "leave hosts out to use every host, or name some")
        hosts: list[str] = []
        for index, host in items:
            if play_hosts is not None and host not in play_hosts:
                known = ", ".join(play_hosts)
                self.add(where, f"hosts[{index}]", f"{host!r} is not among the play's hosts ({known})", fix)
            elif host in hosts:
                self.add(where, f"hosts[{index}]", f"{host!r} is listed twice", "list each host once")
            else:
                hosts.append(host)
        return hosts

    def settings(self, where: str, block: str, raw: object, rules: dict[str, Rule]) -> dict:
        """A backend settings block, with defaults filled in."""
        settings = {key: plain(rule.default) for key, rule in rules.items()}
        if not self.mapping(where, block, raw, f"write {block} settings as a mapping, or leave them out"):
            return settings
        self.unknown_fields(f"{where}.{block}", raw, tuple(rules))
        for key, value in raw.items():
            rule = rules.get(key)
            if rule is None:
                continue
            problems = rule.check(value)
            self.add_all(where, f"{block}.{key}", problems, rule.fix)
            if not problems:
                settings[key] = rule.normalise(value)
        return settings
