# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks across models: public names and aliases, unit names, pinned digests, fallback chains, wildcard routes."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.labai.llm_stack.plugins.plugin_utils._catalog_read import FALLBACK_FIELDS, ModelEntry
from ansible_collections.labai.llm_stack.plugins.plugin_utils._checker import CATALOG, Checker
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import is_list, kind
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import BACKENDS

MAX_REPORTED_LOOPS = 20
ROUTE_FIELDS = ("model", "pattern")


def public_names(check: Checker, models: list[ModelEntry]) -> dict[str, ModelEntry]:
    """Every name, then every alias, with the model it belongs to; a second claim is a problem."""
    owners: dict[str, tuple[ModelEntry, str]] = {}
    fix = "give each model and alias a unique name"
    for model in models:
        if model.name is None:
            continue
        if model.name in owners:
            check.add(model.where, "name", _taken(model.name, *owners[model.name]), fix)
            model.name_ok = False
        else:
            owners[model.name] = (model, "name")
    for model in models:
        for index, alias in model.aliases:
            if alias in owners:
                check.add(model.where, f"aliases[{index}]", _taken(alias, *owners[alias]), fix)
            else:
                owners[alias] = (model, "alias")
    return {public: owner for public, (owner, _) in owners.items()}


def _taken(public: str, owner: ModelEntry, claim: str) -> str:
    if claim == "name":
        return f"{public!r} is already the public name of models[{owner.index}]"
    return f"{public!r} is already an alias of {owner.where}"


def unit_names(check: Checker, models: list[ModelEntry]) -> None:
    """Models with their own service need unit names that differ after slugging."""
    units: dict[str, ModelEntry] = {}
    for model in models:
        if not model.name_ok or not (model.backend and BACKENDS[model.backend].per_model):
            continue
        unit = f"llm-{model.service}.service"
        if unit in units:
            what = f"{model.name!r} gives the unit name {unit}, already used by {units[unit].where}"
            check.add(model.where, "name", what, "choose a name that differs in more than case or punctuation")
        else:
            units[unit] = model


def digests(check: Checker, models: list[ModelEntry]) -> None:
    """Models a shared server serves under the same name (two public names for one Ollama model) pin one digest:
    the server holds one copy of it."""
    pinned: dict[tuple[str, str], ModelEntry] = {}
    for model in models:
        backend = BACKENDS.get(model.backend or "")
        digest = model.settings.get("digest")
        if backend is None or backend.per_model or not digest or not model.model:
            continue
        for listed in backend.listed_names(model.public_names, model.model, model.settings):
            other = pinned.setdefault((backend.name, listed), model)
            if other is not model and other.settings["digest"] != digest:
                what = (
                    f"differs from the {backend.name}.digest of {other.where}, which serves the same model {listed!r}"
                )
                fix = f"give both models the one digest the server lists for {listed}"
                check.add(model.where, f"{backend.name}.digest", what, fix)


def fallbacks(check: Checker, models: list[ModelEntry], owners: dict[str, ModelEntry]) -> None:
    """Each fallback must name a model or alias; no chain may come back to where it started."""
    by_index = {model.index: model for model in models}
    for field_name in FALLBACK_FIELDS:
        edges = {model.index: _fallback_targets(check, model, field_name, owners) for model in models}
        for loop in _loops(edges):
            chain = " -> ".join(by_index[index].name or "?" for index in loop)
            what = f"fallback chain loops {chain}"
            check.add(by_index[loop[0]].where, field_name, what, "remove one of these fallbacks")


def _fallback_targets(check: Checker, model: ModelEntry, field_name: str, owners: dict) -> list[int]:
    targets: dict[int, None] = {}
    seen: dict[str, int] = {}
    for index, public in model.fallbacks[field_name]:
        location = f"{field_name}[{index}]"
        if public in seen:
            what = f"{public!r} is already listed at {field_name}[{seen[public]}]"
            check.add(model.where, location, what, "list each fallback once")
        elif public not in owners:
            what = f"{public!r} is not a model name or alias in the catalog"
            check.add(model.where, location, what, "name a model declared under models")
        else:
            targets[owners[public].index] = None
        seen.setdefault(public, index)
    return list(targets)


def _loops(edges: dict[int, list[int]]) -> list[list[int]]:
    """Every simple cycle once, each starting (and ending) at its lowest model index."""
    loops: list[list[int]] = []
    for start in sorted(edges):
        reaching = _reaching(edges, start)
        _walk(edges, start, [start], reaching, loops)
        if len(loops) >= MAX_REPORTED_LOOPS:
            break
    return loops[:MAX_REPORTED_LOOPS]


def _reaching(edges: dict[int, list[int]], start: int) -> set[int]:
    """Nodes not below start from which start can be reached through nodes not below start."""
    reaching, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for source, targets in edges.items():
            if source > start and source not in reaching and node in targets:
                reaching.add(source)
                todo.append(source)
    return reaching


def _walk(edges: dict[int, list[int]], start: int, path: list[int], reaching: set[int], loops: list) -> None:
    for target in edges.get(path[-1], []):
        if len(loops) >= MAX_REPORTED_LOOPS:
            return
        if target == start:
            loops.append([*path, start])
        elif target in reaching and target not in path:
            _walk(edges, start, [*path, target], reaching, loops)


# ---------------------------------------------------------------------------------------------------------
# Routes


def routes(check: Checker, catalog: Mapping, owners: dict[str, ModelEntry]) -> list[tuple[str, ModelEntry]]:
    raw = catalog.get("routes", [])
    if not is_list(raw):
        check.add(CATALOG, "routes", f"expected a list, got {kind(raw)}", "write routes as a list")
        return []
    routes: list[tuple[str, ModelEntry]] = []
    patterns: dict[str, int] = {}
    for index, entry in enumerate(raw):
        route = _route(check, index, entry, owners, patterns)
        if route:
            routes.append(route)
    return routes


def _route(
    check: Checker, index: int, raw: object, owners: dict[str, ModelEntry], patterns: dict[str, int]
) -> tuple[str, ModelEntry] | None:
    where = f"routes[{index}]"
    if not check.mapping(where, "", raw, "write each route as {pattern: 'vendor/*', model: <model name>}"):
        return None
    check.unknown_fields(where, raw, ROUTE_FIELDS)
    pattern = _route_pattern(check, index, raw, patterns)
    target = None
    fix = "name a model declared under models"
    if "model" not in raw:
        check.add(where, "model", "required", fix)
    else:
        public = check.string(where, "model", raw["model"], fix)
        target = owners.get(public) if public is not None else None
        if public is not None and target is None:
            check.add(where, "model", f"{public!r} is not a model name or alias in the catalog", fix)
    if pattern is None or target is None:
        return None
    return pattern, target


def _route_pattern(check: Checker, index: int, raw: Mapping, patterns: dict[str, int]) -> str | None:
    where = f"routes[{index}]"
    fix = "use a wildcard pattern such as 'meta-llama/*'"
    if "pattern" not in raw:
        check.add(where, "pattern", "required", fix)
        return None
    pattern = check.string(where, "pattern", raw["pattern"], fix)
    if pattern is None:
        return None
    if "*" not in pattern:
        what = f"{pattern!r} has no '*'"
        check.add(where, "pattern", what, fix + ", or add the exact name as an alias of the model")
        return None
    if pattern in patterns:
        what = f"{pattern!r} is already routed by routes[{patterns[pattern]}]"
        check.add(where, "pattern", what, "keep one route per pattern")
        return None
    patterns[pattern] = index
    return pattern
