# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the ``llm_stack_catalog`` model catalog and turn it into the deployment plan.

``build_plan(catalog, hosts, addresses)`` checks the whole catalog, collects every problem it finds and
raises ``CatalogError`` with all of them; otherwise it returns the plan: for each host the finished
records of the services it runs (unit, env file, port, bind address, probe URL, the gateway's api_base,
the names to expect, settings, ready timeout), plus the models, public names, fallbacks, routes and the
Redis the gateways share.
Roles and phases read these records and derive nothing.

Every problem reads ``<location>.<field>: <what is wrong>; <how to fix it>``, where the location is
``models[<i>] (<name>)``, ``routes[<i>]``, ``gateway``, ``backends.<name>`` or ``llm_stack_catalog``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.labai.llm_stack.plugins.plugin_utils import _catalog_links as links
from ansible_collections.labai.llm_stack.plugins.plugin_utils import _catalog_read as read
from ansible_collections.labai.llm_stack.plugins.plugin_utils import _records as records
from ansible_collections.labai.llm_stack.plugins.plugin_utils._checker import CATALOG, CatalogError, Checker
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import is_mapping, kind

__all__ = ["CatalogError", "build_plan"]

# A DNS name, an IPv4 address or an IPv6 address (no scheme, no port, no path).
ADDRESS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")


def _addresses(check: Checker, addresses: object, play_hosts: list[str]) -> dict[str, str]:
    """Where other hosts reach each host's servers bound to every interface (llm_stack_address)."""
    if addresses is None:
        return {}
    if not is_mapping(addresses):
        check.add("plan(addresses)", "", f"expected a mapping, got {kind(addresses)}", "map hostnames to addresses")
        return {}
    found = {}
    for host, address in addresses.items():
        if host not in play_hosts:
            continue
        if isinstance(address, str) and ADDRESS.fullmatch(address.strip()):
            found[str(host)] = str(address).strip()
        else:
            what = (
                "the value is empty"
                if isinstance(address, str) and not address.strip()
                else f"{address!r} is not a DNS name or IP address"
                if isinstance(address, str)
                else f"expected a string, got {kind(address)}"
            )
            check.add(f"llm_stack_address of {host}", "", what, "set the address or DNS name other hosts reach it at")
    return found


def build_plan(catalog: dict, hosts: list[str], addresses: Mapping[str, str] | None = None) -> dict:
    """Check ``catalog`` against ``hosts`` (the play's inventory hostnames) and return the plan.

    ``addresses`` maps a hostname to the address other hosts reach it at, for servers bound to every
    interface (default: the hostname). Raises CatalogError listing every problem when the catalog is invalid.
    """
    check = Checker()
    play_hosts = read.play_hosts(check, hosts)
    if not is_mapping(catalog):
        what = f"expected a mapping, got {kind(catalog)}"
        check.add(CATALOG, "", what, "define models (and optionally gateway, backends, routes) under it")
        raise CatalogError(check.problems)
    reach = _addresses(check, addresses, play_hosts or [])
    check.unknown_fields(CATALOG, catalog, read.TOP_FIELDS)
    gateway = read.gateway(check, catalog, play_hosts)
    backends = read.backends(check, catalog)
    models = read.models(check, catalog, backends, play_hosts)
    owners = links.public_names(check, models)
    links.unit_names(check, models)
    links.digests(check, models)
    links.fallbacks(check, models, owners)
    services = records.services(models, backends, gateway, play_hosts or [])
    records.ports(check, services, play_hosts or [])
    records.host_addresses(check, services, reach)
    records.reachability(check, services, backends)
    shared = records.redis(check, gateway, services, reach)
    routes = links.routes(check, catalog, owners)
    if check.problems:
        raise CatalogError(check.problems)
    return records.assemble(models, services, routes, play_hosts or [], reach, shared=shared)
