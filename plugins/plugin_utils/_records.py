# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From checked catalog entries to services, the checks that need them (ports, reachability), and the
finished per-host service records every role and phase reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ansible_collections.labai.llm_stack.plugins.plugin_utils._catalog_read import (
    BackendEntry,
    GatewayEntry,
    Listener,
    ModelEntry,
)
from ansible_collections.labai.llm_stack.plugins.plugin_utils._checker import CATALOG, Checker
from ansible_collections.labai.llm_stack.plugins.plugin_utils._values import (
    HOST_ADDRESS,
    PRIVATE_RANGES,
    address_kind,
    ip_address,
    network_kind,
    url_host,
)
from ansible_collections.labai.llm_stack.plugins.plugin_utils.backends import BACKENDS, GATEWAY

PROBE_ANY = "127.0.0.1"  # a server bound to every interface is probed on its own host's loopback


@dataclass
class Service:
    key: str
    backend: str  # a backend's name, or the gateway's (litellm)
    where: str  # the catalog entry that declares it, for messages
    port: int | None
    hosts: list[str]
    models: list[ModelEntry]
    listener: Listener
    ready_timeout: int
    tls: dict[str, str] = field(default_factory=dict)  # the gateway's PEM files on the controller; empty: HTTP

    @property
    def unit(self) -> str:
        return f"llm-{self.key}.service"


def _model_listener(model: ModelEntry, backend: BackendEntry) -> Listener:
    if model.bind_refused:
        return Listener(backend.listener.bind, f"{model.where}.bind", checked=False)
    return Listener(model.bind, f"{model.where}.bind") if model.bind else backend.listener


def services(
    models: list[ModelEntry], backends: dict[str, BackendEntry], gateway: GatewayEntry, play_hosts: list[str]
) -> list[Service]:
    """Services in start order: one per model of a per-model backend, then the shared servers, then the gateway."""
    found = [
        Service(
            model.service,
            model.backend,
            model.where,
            model.port,
            model.hosts,
            [model],
            _model_listener(model, backends[model.backend]),
            backends[model.backend].ready_timeout,
        )
        for model in models
        if model.backend and BACKENDS[model.backend].per_model and model.name_ok
    ]
    for name, backend in BACKENDS.items():
        shared = [model for model in models if model.backend == name and not backend.per_model]
        entry = backends[name]
        if shared and entry.enabled:
            hosts = [host for host in play_hosts if any(host in model.hosts for model in shared)]
            where = f"backends.{name}"
            found.append(Service(name, name, where, entry.port, hosts, shared, entry.listener, entry.ready_timeout))
    found.append(
        Service(
            GATEWAY.key,
            GATEWAY.name,
            "gateway",
            gateway.port,
            gateway.hosts,
            models,
            gateway.listener,
            gateway.ready_timeout,
            gateway.tls,
        )
    )
    return found


def ports(check: Checker, found: list[Service], play_hosts: list[str]) -> None:
    """No two services on one host may share a port; the later one (in start order) is reported."""
    clashes: dict[tuple[int, int], list[str]] = {}
    for host in play_hosts:
        used: dict[int, int] = {}
        for position, service in enumerate(found):
            if service.port is None or host not in service.hosts:
                continue
            if service.port in used:
                clashes.setdefault((position, used[service.port]), []).append(host)
            else:
                used[service.port] = position
    for (later, earlier), hosts in sorted(clashes.items()):
        service = found[later]
        on = f"host {hosts[0]}" if len(hosts) == 1 else "hosts " + ", ".join(hosts)
        what = f"{service.port} on {on} is already used by {found[earlier].where}"
        check.add(service.where, "port", what, "give each service its own port")


def gateway_hosts(found: list[Service]) -> list[str]:
    return [host for service in found if service.backend == GATEWAY.name for host in service.hosts]


def host_addresses(check: Checker, found: list[Service], addresses: Mapping[str, str]) -> None:
    """A service bound to each host's own address needs that address, as an IP address, on every host."""
    for service in found:
        listener = service.listener
        if not listener.checked or address_kind(listener.bind) != "host":
            continue
        for host in service.hosts:
            address = addresses.get(host)
            if address is None:
                what = f"binds {HOST_ADDRESS}, which is not set for {host}"
            elif ip_address(address):
                what = f"binds {HOST_ADDRESS}, but {host}'s is {address!r}, not an IP address"
            else:
                continue
            check.add(
                listener.field, "", what, f"set {HOST_ADDRESS} of {host} to its IP address on the private network"
            )
            break


def redis(check: Checker, gateway: GatewayEntry, found: list[Service], addresses: Mapping[str, str]) -> dict | None:
    """The one Redis every gateway shares (response cache, cooldowns, usage): its host, the addresses it binds,
    and the gateways that use it. None when the plan runs no gateway."""
    gateways = gateway_hosts(found)
    if not gateways:
        return None
    host = gateway.redis_host or gateways[0]
    away = [other for other in gateways if other != host]
    address = addresses.get(host)
    if away and (address is None or ip_address(address)):
        what = (
            f"the gateway on {away[0]} reaches Redis on {host} over the network, but {HOST_ADDRESS} of {host} is "
            + ("not set" if address is None else f"{address!r}, not an IP address")
        )
        check.add(
            "gateway", "redis_host", what, f"set {HOST_ADDRESS} of {host} to its IP address on the private network"
        )
        return None
    if away:
        problem = _redis_address_problem(address, host, away[0])
        if problem:
            fix = (
                f"set {HOST_ADDRESS} of {host} to its address on the private network ({PRIVATE_RANGES}), "
                "or name a host that has one in gateway.redis_host"
            )
            check.add(f"{HOST_ADDRESS} of {host}", "", problem, fix)
            return None
    return {
        "host": host,
        "bind": [PROBE_ANY, address] if away else [PROBE_ANY],
        "address": address if away else PROBE_ANY,
        "gateways": gateways,
    }


def _redis_address_problem(address: str, host: str, gateway: str) -> str | None:
    """What is wrong with the address Redis binds besides loopback, for the gateways on other hosts: Redis
    speaks plain text, so it listens on a private network only."""
    kind = network_kind(address)
    if kind == "private":
        return None
    if kind == "loopback":
        return f"{address!r} is a loopback address, so the gateway on {gateway} cannot reach Redis on {host}"
    where = "every interface" if kind == "any" else "not a private address"
    return f"{address!r} is {where}, and Redis on {host} would listen on it for the gateway on {gateway}"


def reachability(check: Checker, found: list[Service], backends: Mapping[str, BackendEntry]) -> None:
    """Every backend must be reachable from every gateway, through the one address its records carry, and
    one without authentication only over a network the operator trusts."""
    gateways = gateway_hosts(found)
    specific: dict[str, tuple[str, list[str]]] = {}  # address -> (first field binding it, hosts)
    for service in found:
        listener = service.listener
        if not listener.checked:
            continue
        kind = address_kind(listener.bind)
        if kind == "specific":
            field_name, hosts = specific.setdefault(listener.bind, (listener.field, []))
            hosts.extend(host for host in service.hosts if host not in hosts)
        if service.backend == GATEWAY.name:
            continue
        unauthenticated = not BACKENDS[service.backend].key_variable and not backends[service.backend].trusted_network
        for host in service.hosts:
            away = [gateway for gateway in gateways if gateway != host]
            if away and kind != "loopback" and unauthenticated:
                what = (
                    f"the gateway on {away[0]} would reach the {service.backend} server on {host} over the network, "
                    f"and {service.backend} has no authentication: anyone who reaches {host} can use it"
                )
                fix = (
                    f"serve it on the gateway's host only, bound to 127.0.0.1, or, where that network is trusted "
                    f"(a private network, a firewall that lets only the gateways in), set "
                    f"{CATALOG}.backends.{service.backend}.trusted_network: true"
                )
                check.add(f"backends.{service.backend}", "", what, fix)
                break
            if away and kind == "loopback":
                what = (
                    f"{listener.bind} is a loopback address, so the gateway on {away[0]} cannot reach "
                    f"{service.where} on {host}"
                )
                fix = (
                    f"bind an address the gateway can reach: {host}'s private address, or 0.0.0.0 "
                    f"(with llm_stack_address set for {host} if its inventory name does not resolve)"
                )
                check.add(listener.field, "", what, fix)
                break
    for address, (field_name, hosts) in specific.items():
        if len(hosts) > 1:
            what = f"{address} is one host's address, but it would be bound on {', '.join(hosts)}"
            fix = "bind 0.0.0.0 and set llm_stack_address for each host, or bind each host's own address"
            check.add(field_name, "", what, fix)


def _bind(service: Service, host: str, addresses: Mapping[str, str]) -> str:
    """The address the service listens on, on this host."""
    bind = service.listener.bind
    return addresses[host] if address_kind(bind) == "host" else bind


def _urls(service: Service, host: str, addresses: Mapping[str, str]) -> tuple[str, str]:
    """Where the host itself probes the service, and where the gateway (or a client) reaches it."""
    bind = _bind(service, host, addresses)
    any_interface = address_kind(bind) == "any"
    probe = PROBE_ANY if any_interface else bind
    reach = (addresses.get(host) or host) if any_interface else bind
    scheme = "https" if service.tls else "http"
    return f"{scheme}://{url_host(probe)}:{service.port}", f"{scheme}://{url_host(reach)}:{service.port}"


def _tls(service: Service) -> dict:
    """Where the gateway's PEM files come from (controller) and go (host); empty for plain HTTP."""
    if not service.tls:
        return {}
    ca = service.tls.get("ca_certificate")
    return {
        "sources": dict(service.tls),
        # Relative to the service account's ~/.config, as its other config files.
        "certificate": GATEWAY.tls_certificate,
        "private_key": GATEWAY.tls_private_key,
        # Readable by every account on the host: the phases' probes run as the connecting user.
        "ca_file": GATEWAY.tls_ca_file if ca else "",
    }


def _names(models: list[ModelEntry]) -> list[str]:
    return [public for model in models for public in model.public_names]


def record(service: Service, host: str, addresses: Mapping[str, str], gateways: list[str], shared: dict | None) -> dict:
    """The finished record of one service on one host: nothing about it is left to derive."""
    probe_url, reach_url = _urls(service, host, addresses)
    backend = BACKENDS.get(service.backend)
    here = [model for model in service.models if backend is None or host in model.hosts]
    if backend is None:
        names = _names(service.models)
    else:
        listed = (backend.listed_names(model.public_names, model.model, model.settings) for model in here)
        names = list(dict.fromkeys(name for names in listed for name in names))
    entry = {
        "key": service.key,
        "backend": service.backend,
        "unit": service.unit,
        "env_file": f"{service.key}.env",
        "port": service.port,
        "bind": _bind(service, host, addresses),
        "probe_url": probe_url,
        "api_base": reach_url + (backend.api_path if backend else "/v1"),
        "names": names,
        "chat_model": names[0] if names else None,
        "models": [model.name for model in here],
        # The gateway's id of each model's deployment here (backends only), in the order of models.
        "gateway_ids": [GATEWAY.deployment_id(model.name or "", host) for model in here] if backend else [],
        "ready_timeout": service.ready_timeout,
        "needs_gpu": bool(backend) and any(backend.needs_gpu(model.settings) for model in here),
        "key_variable": backend.key_variable if backend else GATEWAY.key_variable,
        # The gateways on other hosts that reach this server over the network.
        "reached_from": [gateway for gateway in gateways if gateway != host] if backend else [],
        "config_files": [] if backend else list(GATEWAY.config_files),
        "tls": _tls(service),
        # The CA file that verifies this server's certificate (its probes pass it); empty: the host's CA store.
        "ca_path": _tls(service).get("ca_file", ""),
    }
    if not backend and shared:
        # Where this gateway reaches the shared Redis: its own loopback, or the Redis host's address.
        entry["redis_address"] = PROBE_ANY if shared["host"] == host else shared["address"]
    if backend and backend.per_model:
        [model] = here
        entry.update(name=model.name, model=model.model, model_file=model.model_file, settings=model.settings)
    elif backend:
        # The digest the catalog pins for each model the shared server holds (by the name it lists the model by).
        entry["digests"] = [
            {"model": listed, "digest": model.settings["digest"], "name": model.name}
            for model in here
            if model.settings.get("digest")
            for listed in backend.listed_names(model.public_names, model.model, model.settings)
        ]
    return entry


def plan_model(model: ModelEntry) -> dict:
    backend = BACKENDS[model.backend or ""]
    return {
        "name": model.name,
        "backend": model.backend,
        "aliases": [alias for _, alias in model.aliases],
        "fallbacks": [public for _, public in model.fallbacks["fallbacks"]],
        "context_window_fallbacks": [public for _, public in model.fallbacks["context_window_fallbacks"]],
        "hosts": list(model.hosts),
        "service": model.service,
        "upstream": backend.upstream(model.name or "", model.model),
        "model": model.model,
        "model_file": model.model_file,
        "settings": model.settings,
    }


def assemble(
    models: list[ModelEntry],
    found: list[Service],
    routes: list[tuple[str, ModelEntry]],
    play_hosts: list[str],
    addresses: Mapping[str, str],
    *,
    shared: dict | None,
) -> dict:
    plan_models = [plan_model(model) for model in models]
    return {
        "models": plan_models,
        "hosts": {
            host: {
                "services": [
                    record(service, host, addresses, gateway_hosts(found), shared)
                    for service in found
                    if host in service.hosts
                ]
            }
            for host in play_hosts
        },
        "public_names": sorted(_names(models)),
        "fallbacks": {model["name"]: model["fallbacks"] for model in plan_models if model["fallbacks"]},
        "routes": [{"pattern": pattern, "model": target.name, "service": target.service} for pattern, target in routes],
        "redis": shared,
    }
