"""The typed configuration of one stack, read and validated before any resource is declared.

Everything a stack may set lives under the project's namespace in `Pulumi.<stack>.yaml`. The reader
collects every problem it finds and raises them together as one `ConfigError`, each line naming the
stack file, the key and the bad value, so a user fixes a stack file in one pass instead of one error
per `pulumi preview`.

Address ranges are also checked against the pools of every other `Pulumi.<stack>.yaml` in the project:
clusters share one LAN, so two stacks that hand out the same address would answer ARP for it twice.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.config
import yaml

from project_files import stack_names

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_CHART_VERSION = "0.14.3"
DEFAULT_CHART_REPOSITORY = "https://metallb.github.io/metallb"
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 300
DEFAULT_BOOTSTRAP_PORT = 4433
DEFAULT_BOOTSTRAP_HOSTNAME = "bootstrap.macula.local"

# Kubernetes object names (RFC 1123 subdomain), which pools and advertisements become.
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOSTNAME_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", re.IGNORECASE)
_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_SSH_PUBLIC_KEY = re.compile(
    r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,2}( .*)?$"
)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


class ConfigError(pulumi.RunError):
    """A stack's configuration is invalid. RunError makes Pulumi print the message without a traceback."""


@dataclass(frozen=True)
class AddressBlock:
    """One entry of a pool's `addresses`: a CIDR or a `first-last` range, as the first and last address."""

    text: str
    first: IPAddress
    last: IPAddress

    def overlaps(self, other: AddressBlock) -> bool:
        return (
            self.first.version == other.first.version
            and int(self.first) <= int(other.last)
            and int(other.first) <= int(self.last)
        )

    def contains(self, address: IPAddress) -> bool:
        return address.version == self.first.version and int(self.first) <= int(address) <= int(self.last)


@dataclass(frozen=True)
class PoolConfig:
    """A MetalLB IPAddressPool. Unset options are left to the CRD's defaults."""

    name: str
    addresses: tuple[AddressBlock, ...]
    auto_assign: bool | None = None
    avoid_buggy_ips: bool | None = None

    def contains(self, address: IPAddress) -> bool:
        return any(block.contains(address) for block in self.addresses)


@dataclass(frozen=True)
class AdvertisementConfig:
    """A MetalLB L2Advertisement of the named pools."""

    name: str
    pools: tuple[str, ...]
    interfaces: tuple[str, ...] = ()
    node_selectors: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ChartConfig:
    """Where the MetalLB chart comes from and the values this program sets on it."""

    version: str = DEFAULT_CHART_VERSION
    repository: str = DEFAULT_CHART_REPOSITORY
    # A local chart directory or .tgz archive, for hosts that cannot reach the chart repository.
    path: str | None = None
    frr_enabled: bool = False
    webhook_timeout_seconds: int = DEFAULT_WEBHOOK_TIMEOUT_SECONDS


@dataclass(frozen=True)
class BootstrapConfig:
    """The existing bootstrap Service this stack turns into a LoadBalancer."""

    namespace: str = "macula"
    service: str = "macula-bootstrap"
    # None lets MetalLB choose from the stack's pools.
    ip: IPAddress | None = None
    pool: str | None = None
    # Published by ExternalDNS when set.
    hostname: str | None = None
    # The QUIC port, UDP.
    port: int = DEFAULT_BOOTSTRAP_PORT


@dataclass(frozen=True)
class DnsFixConfig:
    """Where and how to remove the host's dnsmasq override for the bootstrap name, over SSH."""

    host: str
    user: str
    port: int = 22
    # The server's public key in authorized_keys form; None accepts any host key.
    host_key: str | None = None
    hostname: str = DEFAULT_BOOTSTRAP_HOSTNAME
    # How to restart a dnsmasq that is not systemd's dnsmasq.service (NetworkManager's, a container's).
    restart_command: str | None = None
    # Which dnsmasq, when several run and none is dnsmasq.service.
    pid_file: str | None = None
    # Also run `ufw allow <firewall_port>/udp` on that host, as the runbook does by hand.
    open_firewall: bool = False
    # The bootstrap Service's UDP port.
    firewall_port: int = DEFAULT_BOOTSTRAP_PORT
    # From the secret `sshPrivateKey`; None authenticates through ssh-agent.
    private_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StackConfig:
    stack: str
    stack_file: str
    kube_context: str
    kubeconfig: str | None
    chart: ChartConfig
    pools: tuple[PoolConfig, ...]
    advertisements: tuple[AdvertisementConfig, ...]
    bootstrap: BootstrapConfig | None = None
    dns_fix: DnsFixConfig | None = None
    # Nodes whose exclude-from-external-load-balancers label is removed, so their speakers announce.
    clear_lb_exclusion: tuple[str, ...] = ()
    strict_arp: bool = False
    # Take over a MetalLB this stack does not manage (the runbook's, or a Helm release's) instead of
    # refusing to run; see takeover_plan.
    adopt_existing: bool = False


class _Problems:
    """Collects the problems of one stack file, each as `key: message`."""

    def __init__(self, stack_file: str, namespace: str) -> None:
        self.stack_file = stack_file
        self.namespace = namespace
        self.lines: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{self.namespace}:{key}: {message}")

    def raise_if_any(self, heading: str) -> None:
        if self.lines:
            body = "\n".join(f"  - {line}" for line in self.lines)
            raise ConfigError(f"{heading} ({self.stack_file}):\n{body}")


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


def _check_keys(problems: _Problems, key: str, value: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for unknown in sorted(set(value) - set(allowed)):
        problems.add(
            f"{key}.{unknown}" if key else unknown,
            f"unknown key (known keys: {', '.join(allowed)})",
        )


def _mapping(problems: _Problems, key: str, value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    problems.add(key, f"expected an object, got {_show(value)}")
    return None


def _list(problems: _Problems, key: str, value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    problems.add(key, f"expected a list, got {_show(value)}")
    return None


def _string(problems: _Problems, key: str, value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    problems.add(key, f"expected a non-empty string, got {_show(value)}")
    return None


def _optional_bool(problems: _Problems, key: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    problems.add(key, f"expected true or false, got {_show(value)}")
    return None


def _object_name(problems: _Problems, key: str, value: Any) -> str | None:
    name = _string(problems, key, value)
    if name is not None and (len(name) > 253 or not _OBJECT_NAME.match(name)):
        problems.add(
            key,
            f"{_show(name)} is not a valid Kubernetes object name (lower-case letters, digits, '-' and '.')",
        )
        return None
    return name


def _parse_address(problems: _Problems, key: str, value: Any) -> AddressBlock | None:
    text = _string(problems, key, value)
    if text is None:
        return None
    text = text.strip()
    if "-" in text:
        first_text, _, last_text = (part.strip() for part in text.partition("-"))
        try:
            first = ipaddress.ip_address(first_text)
            last = ipaddress.ip_address(last_text)
        except ValueError:
            problems.add(key, f"{_show(text)} is not a range of two IP addresses (first-last)")
            return None
        if first.version != last.version:
            problems.add(key, f"{_show(text)} mixes IPv4 and IPv6 addresses")
            return None
        if int(first) > int(last):
            problems.add(key, f"{_show(text)} is a reversed range: {first} comes after {last}")
            return None
        return AddressBlock(text, first, last)
    if "/" not in text:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            problems.add(key, f"{_show(text)} is neither a CIDR nor a first-last range")
            return None
        single = "32" if address.version == 4 else "128"
        problems.add(
            key,
            f"{_show(text)} has no prefix length, which MetalLB rejects; "
            f"write {address}/{single} for a single address",
        )
        return None
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        problems.add(key, f"{_show(text)} is not a valid CIDR")
        return None
    if network.network_address != ipaddress.ip_interface(text).ip:
        problems.add(
            key,
            f"{_show(text)} has host bits set; MetalLB would hand out all of {network}. "
            f"Write {network} if that is meant",
        )
        return None
    return AddressBlock(text, network.network_address, network.broadcast_address)


def _parse_pools(problems: _Problems, value: Any) -> tuple[PoolConfig, ...]:
    entries = _list(problems, "pools", value)
    if entries is None:
        return ()
    if not entries:
        problems.add("pools", "needs at least one pool")
    pools: list[PoolConfig] = []
    for index, entry in enumerate(entries):
        key = f"pools[{index}]"
        pool = _mapping(problems, key, entry)
        if pool is None:
            continue
        _check_keys(problems, key, pool, ("name", "addresses", "autoAssign", "avoidBuggyIPs"))
        name = _object_name(problems, f"{key}.name", pool.get("name"))
        addresses = _list(problems, f"{key}.addresses", pool.get("addresses"))
        blocks: list[AddressBlock] = []
        if addresses is not None:
            if not addresses:
                problems.add(f"{key}.addresses", "is empty: a pool needs at least one address range")
            for position, address in enumerate(addresses):
                block = _parse_address(problems, f"{key}.addresses[{position}]", address)
                if block is not None:
                    blocks.append(block)
        auto_assign = _optional_bool(problems, f"{key}.autoAssign", pool.get("autoAssign"))
        avoid_buggy = _optional_bool(problems, f"{key}.avoidBuggyIPs", pool.get("avoidBuggyIPs"))
        if name is not None:
            pools.append(PoolConfig(name, tuple(blocks), auto_assign, avoid_buggy))
    _reject_duplicate_names(problems, "pools", [pool.name for pool in pools])
    return tuple(pools)


def _reject_duplicate_names(problems: _Problems, key: str, names: list[str]) -> None:
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.add(key, f"name {_show(name)} is used more than once")


def _parse_node_selector(problems: _Problems, key: str, value: Any) -> Mapping[str, Any] | None:
    selector = _mapping(problems, key, value)
    if selector is None:
        return None
    _check_keys(problems, key, selector, ("matchLabels", "matchExpressions"))
    labels = selector.get("matchLabels", {})
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        problems.add(f"{key}.matchLabels", f"expected a map of strings, got {_show(labels)}")
        return None
    expressions = _list(problems, f"{key}.matchExpressions", selector.get("matchExpressions", []))
    if expressions is None:
        return None
    for index, expression in enumerate(expressions):
        expression_key = f"{key}.matchExpressions[{index}]"
        fields = _mapping(problems, expression_key, expression)
        if fields is None:
            return None
        _check_keys(problems, expression_key, fields, ("key", "operator", "values"))
        _string(problems, f"{expression_key}.key", fields.get("key"))
        operator = fields.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            problems.add(
                f"{expression_key}.operator",
                f"{_show(operator)} is not one of In, NotIn, Exists, DoesNotExist",
            )
    return dict(selector)


def _parse_advertisements(
    problems: _Problems, value: Any, pools: tuple[PoolConfig, ...]
) -> tuple[AdvertisementConfig, ...]:
    pool_names = tuple(pool.name for pool in pools)
    if value is None:
        # The common case: one L2 advertisement of every pool of the stack.
        return (AdvertisementConfig("lan-advertisement", pool_names),) if pool_names else ()
    entries = _list(problems, "advertisements", value)
    if entries is None:
        return ()
    if not entries:
        problems.add(
            "advertisements",
            "is empty: the pools' addresses would be assigned but never announced; "
            "leave the key out for one advertisement of every pool",
        )
    advertisements: list[AdvertisementConfig] = []
    for index, entry in enumerate(entries):
        key = f"advertisements[{index}]"
        advertisement = _mapping(problems, key, entry)
        if advertisement is None:
            continue
        _check_keys(problems, key, advertisement, ("name", "pools", "interfaces", "nodeSelectors"))
        name = _object_name(problems, f"{key}.name", advertisement.get("name"))
        named_pools = _list(problems, f"{key}.pools", advertisement.get("pools", list(pool_names)))
        if named_pools == []:
            # MetalLB would read an empty list as "every pool"; say so explicitly instead.
            problems.add(f"{key}.pools", "is empty; leave it out to advertise every pool of the stack")
        for position, pool_name in enumerate(named_pools or []):
            if pool_name not in pool_names:
                problems.add(
                    f"{key}.pools[{position}]",
                    f"{_show(pool_name)} is not a pool of this stack "
                    f"(pools: {', '.join(pool_names) or 'none'})",
                )
        interfaces = _list(problems, f"{key}.interfaces", advertisement.get("interfaces", []))
        for position, interface in enumerate(interfaces or []):
            _string(problems, f"{key}.interfaces[{position}]", interface)
        selectors = _list(problems, f"{key}.nodeSelectors", advertisement.get("nodeSelectors", []))
        parsed_selectors = [
            _parse_node_selector(problems, f"{key}.nodeSelectors[{position}]", selector)
            for position, selector in enumerate(selectors or [])
        ]
        if name is not None:
            advertisements.append(
                AdvertisementConfig(
                    name,
                    tuple(named_pools or ()),
                    tuple(interfaces or ()),
                    tuple(selector for selector in parsed_selectors if selector is not None),
                )
            )
    _reject_duplicate_names(problems, "advertisements", [item.name for item in advertisements])
    advertised = {name for advertisement in advertisements for name in advertisement.pools}
    for index, name in enumerate(pool_names):
        if advertisements and name not in advertised:
            problems.add(
                f"pools[{index}]",
                f"pool {_show(name)} is in no advertisement: its addresses would be assigned but never "
                "announced",
            )
    return tuple(advertisements)


def _parse_chart(problems: _Problems, value: Any) -> ChartConfig:
    if value is None:
        return ChartConfig()
    chart = _mapping(problems, "metallb", value)
    if chart is None:
        return ChartConfig()
    _check_keys(
        problems,
        "metallb",
        chart,
        ("chartVersion", "chartRepository", "chartPath", "frrEnabled", "webhookTimeoutSeconds"),
    )
    version = chart.get("chartVersion", DEFAULT_CHART_VERSION)
    if not isinstance(version, str) or not _SEMVER.match(version):
        problems.add("metallb.chartVersion", f"{_show(version)} is not a chart version like 0.14.3")
    repository = chart.get("chartRepository", DEFAULT_CHART_REPOSITORY)
    if not isinstance(repository, str) or not re.match(r"^(https?|oci)://\S+$", repository):
        problems.add(
            "metallb.chartRepository",
            f"{_show(repository)} is not an http(s):// or oci:// chart repository URL",
        )
    path = chart.get("chartPath")
    if path is not None:
        path = _string(problems, "metallb.chartPath", path)
        for ignored in ("chartRepository", "chartVersion"):
            if ignored in chart:
                problems.add(
                    "metallb.chartPath",
                    f"set either chartPath (a local chart, whatever version it holds) or {ignored}, not both",
                )
    frr_enabled = _optional_bool(problems, "metallb.frrEnabled", chart.get("frrEnabled"))
    timeout = chart.get("webhookTimeoutSeconds", DEFAULT_WEBHOOK_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 10 <= timeout <= 3600:
        problems.add(
            "metallb.webhookTimeoutSeconds",
            f"{_show(timeout)} is not a whole number of seconds from 10 to 3600",
        )
        timeout = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    return ChartConfig(
        version=version if isinstance(version, str) else DEFAULT_CHART_VERSION,
        repository=repository if isinstance(repository, str) else DEFAULT_CHART_REPOSITORY,
        path=path,
        frr_enabled=bool(frr_enabled),
        webhook_timeout_seconds=timeout,
    )


def _port(problems: _Problems, key: str, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.add(key, f"{_show(value)} is not a port number from 1 to 65535")
        return None
    return value


def _hostname(problems: _Problems, key: str, value: Any, *, qualified: bool) -> str | None:
    name = _string(problems, key, value)
    if name is None:
        return None
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        problems.add(key, f"{_show(name)} is not a valid hostname (letters, digits and '-' per label)")
        return None
    if qualified and len(labels) < 2:
        problems.add(key, f"{_show(name)} is not a fully qualified name like bootstrap.macula.local")
        return None
    return name


def _parse_bootstrap(
    problems: _Problems, value: Any, pools: tuple[PoolConfig, ...]
) -> BootstrapConfig | None:
    if value is None:
        return None
    bootstrap = _mapping(problems, "bootstrap", value)
    if bootstrap is None:
        return None
    _check_keys(problems, "bootstrap", bootstrap, ("namespace", "service", "ip", "pool", "hostname", "port"))
    namespace = _object_name(problems, "bootstrap.namespace", bootstrap.get("namespace", "macula"))
    service = _object_name(problems, "bootstrap.service", bootstrap.get("service", "macula-bootstrap"))
    port = _port(problems, "bootstrap.port", bootstrap.get("port", DEFAULT_BOOTSTRAP_PORT))
    hostname = bootstrap.get("hostname")
    if hostname is not None:
        hostname = _hostname(problems, "bootstrap.hostname", hostname, qualified=True)
    pool_names = [pool.name for pool in pools]
    pool_name = bootstrap.get("pool")
    if pool_name is not None and pool_name not in pool_names:
        problems.add(
            "bootstrap.pool",
            f"{_show(pool_name)} is not a pool of this stack (pools: {', '.join(pool_names) or 'none'})",
        )
        pool_name = None
    ip = None
    if "ip" in bootstrap:
        ip = _pinned_ip(problems, bootstrap["ip"], pools, pool_name)
    return BootstrapConfig(
        namespace=namespace or "macula",
        service=service or "macula-bootstrap",
        ip=ip,
        pool=pool_name,
        hostname=hostname,
        port=port or DEFAULT_BOOTSTRAP_PORT,
    )


def _pinned_ip(
    problems: _Problems, value: Any, pools: tuple[PoolConfig, ...], pool_name: str | None
) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None:
        problems.add("bootstrap.ip", f"{_show(value)} is not an IP address")
        return None
    candidates = [pool for pool in pools if pool_name in (None, pool.name)]
    owner = next((pool for pool in candidates if pool.contains(ip)), None)
    if owner is None:
        where = f"pool {_show(pool_name)}" if pool_name else "any pool of this stack"
        ranges = ", ".join(block.text for pool in candidates for block in pool.addresses) or "none"
        problems.add(
            "bootstrap.ip", f"{_show(value)} is outside {where} ({ranges}); MetalLB could never assign it"
        )
        return None
    if owner.avoid_buggy_ips and ip.version == 4 and ip.packed[-1] in (0, 255):
        problems.add(
            "bootstrap.ip",
            f"{_show(value)} ends in .0 or .255, which pool {_show(owner.name)} avoids (avoidBuggyIPs)",
        )
        return None
    return ip


def _parse_dns_fix(
    problems: _Problems, value: Any, private_key: Any, bootstrap: BootstrapConfig | None
) -> DnsFixConfig | None:
    if private_key is not None and (
        not isinstance(private_key, str) or "PRIVATE KEY-----" not in private_key
    ):
        # Never echo the value: it is a secret, and a near-miss is still most of a key.
        problems.add("sshPrivateKey", "is not a PEM or OpenSSH private key (value not shown)")
        private_key = None
    if value is None:
        if private_key is not None:
            problems.add("sshPrivateKey", "is set but dnsFix is not: nothing would use the key")
        return None
    dns_fix = _mapping(problems, "dnsFix", value)
    if dns_fix is None:
        return None
    if "confDir" in dns_fix:
        problems.add(
            "dnsFix.confDir",
            "is no longer used: the DNS fix reads what the running dnsmasq reads (its command line, its main "
            "file and every file and directory those name); remove the key",
        )
    _check_keys(
        problems,
        "dnsFix",
        {key: value for key, value in dns_fix.items() if key != "confDir"},
        (
            "enabled",
            "host",
            "port",
            "user",
            "hostKey",
            "hostname",
            "restartCommand",
            "pidFile",
            "openFirewall",
        ),
    )
    if _optional_bool(problems, "dnsFix.enabled", dns_fix.get("enabled")) is False:
        return None
    if "host" not in dns_fix:
        problems.add("dnsFix.host", "is missing: the DNS fix needs the host that runs dnsmasq")
        host = None
    else:
        host = _ssh_host(problems, dns_fix["host"])
    user = dns_fix.get("user")
    if not isinstance(user, str) or not _UNIX_USER.match(user):
        problems.add("dnsFix.user", f"{_show(user)} is not a login name on the DNS host")
        user = None
    port = _port(problems, "dnsFix.port", dns_fix.get("port", 22))
    host_key = dns_fix.get("hostKey")
    if host_key is not None and (
        not isinstance(host_key, str) or not _SSH_PUBLIC_KEY.match(host_key.strip())
    ):
        problems.add(
            "dnsFix.hostKey",
            f"{_show(host_key)} is not a public key line like 'ssh-ed25519 AAAA...' "
            "(take it from `ssh-keyscan -t ed25519 HOST`, without the host name)",
        )
        host_key = None
    default_hostname = bootstrap.hostname if bootstrap and bootstrap.hostname else DEFAULT_BOOTSTRAP_HOSTNAME
    hostname = _hostname(
        problems, "dnsFix.hostname", dns_fix.get("hostname", default_hostname), qualified=True
    )
    restart_command = dns_fix.get("restartCommand")
    if restart_command is not None and (not isinstance(restart_command, str) or not restart_command.strip()):
        problems.add(
            "dnsFix.restartCommand",
            f"{_show(restart_command)} is not a shell command, such as 'nmcli general reload dns-full'",
        )
        restart_command = None
    pid_file = dns_fix.get("pidFile")
    if pid_file is not None and (not isinstance(pid_file, str) or not pid_file.startswith("/")):
        problems.add(
            "dnsFix.pidFile", f"{_show(pid_file)} is not an absolute path, such as /run/dnsmasq/dnsmasq.pid"
        )
        pid_file = None
    open_firewall = _optional_bool(problems, "dnsFix.openFirewall", dns_fix.get("openFirewall"))
    if host is None or user is None or port is None or hostname is None:
        return None
    return DnsFixConfig(
        host=host,
        user=user,
        port=port,
        host_key=host_key.strip() if host_key else None,
        hostname=hostname,
        restart_command=restart_command,
        pid_file=pid_file,
        open_firewall=bool(open_firewall),
        firewall_port=bootstrap.port if bootstrap else DEFAULT_BOOTSTRAP_PORT,
        private_key=private_key,
    )


def _ssh_host(problems: _Problems, value: Any) -> str | None:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    return _hostname(problems, "dnsFix.host", value, qualified=False)


def _parse_node_names(problems: _Problems, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    names = _list(problems, key, value) or []
    parsed = [_object_name(problems, f"{key}[{index}]", name) for index, name in enumerate(names)]
    return tuple(name for name in parsed if name is not None)


KNOWN_KEYS = (
    "kubeContext",
    "kubeconfig",
    "metallb",
    "pools",
    "advertisements",
    "bootstrap",
    "dnsFix",
    "sshPrivateKey",
    "clearLoadBalancerExclusion",
    "strictArp",
    "adoptExisting",
)


def parse_stack_config(
    stack: str, namespace: str, values: Mapping[str, Any], other_stacks: Mapping[str, Any]
) -> StackConfig:
    """Validate one stack's values (keys without the namespace) against the pools of the other stacks.

    `other_stacks` maps each other stack's name to its raw `pools` value. Raises ConfigError listing
    every problem.
    """
    stack_file = f"Pulumi.{stack}.yaml"
    problems = _Problems(stack_file, namespace)
    _check_keys(problems, "", values, KNOWN_KEYS)
    kube_context = _string(problems, "kubeContext", values.get("kubeContext"))
    kubeconfig = values.get("kubeconfig")
    if kubeconfig is not None:
        kubeconfig = _string(problems, "kubeconfig", kubeconfig)
        if kubeconfig is not None and kubeconfig.startswith("~"):
            # Nothing expands it on the way to kubectl, and expanding it here would make the commands'
            # text differ per machine, which drift checks would report.
            problems.add(
                "kubeconfig",
                f"{_show(kubeconfig)} starts with ~, which is not expanded; give the full path, or leave "
                "kubeconfig unset and use $KUBECONFIG",
            )
            kubeconfig = None
    chart = _parse_chart(problems, values.get("metallb"))
    if "pools" not in values:
        problems.add("pools", "is missing: every cluster needs at least one address pool")
        pools: tuple[PoolConfig, ...] = ()
    else:
        pools = _parse_pools(problems, values["pools"])
    advertisements = _parse_advertisements(problems, values.get("advertisements"), pools)
    _reject_overlaps_within(problems, pools)
    _reject_overlaps_across(problems, namespace, pools, other_stacks)
    bootstrap = _parse_bootstrap(problems, values.get("bootstrap"), pools)
    dns_fix = _parse_dns_fix(problems, values.get("dnsFix"), values.get("sshPrivateKey"), bootstrap)
    clear_lb_exclusion = _parse_node_names(
        problems, "clearLoadBalancerExclusion", values.get("clearLoadBalancerExclusion")
    )
    strict_arp = _optional_bool(problems, "strictArp", values.get("strictArp"))
    adopt_existing = _optional_bool(problems, "adoptExisting", values.get("adoptExisting"))
    problems.raise_if_any(f"Invalid configuration for stack {_show(stack)}")
    assert kube_context is not None  # a missing context was reported above
    return StackConfig(
        stack=stack,
        stack_file=stack_file,
        kube_context=kube_context,
        kubeconfig=kubeconfig,
        chart=chart,
        pools=pools,
        advertisements=advertisements,
        bootstrap=bootstrap,
        dns_fix=dns_fix,
        clear_lb_exclusion=clear_lb_exclusion,
        strict_arp=bool(strict_arp),
        adopt_existing=bool(adopt_existing),
    )


def _indexed_blocks(pools: tuple[PoolConfig, ...]) -> list[tuple[str, PoolConfig, AddressBlock]]:
    return [
        (f"pools[{index}].addresses[{position}]", pool, block)
        for index, pool in enumerate(pools)
        for position, block in enumerate(pool.addresses)
    ]


def _reject_overlaps_within(problems: _Problems, pools: tuple[PoolConfig, ...]) -> None:
    blocks = _indexed_blocks(pools)
    for later_index, (key, pool, block) in enumerate(blocks):
        for other_key, other_pool, other in blocks[:later_index]:
            if block.overlaps(other):
                problems.add(
                    key,
                    f"{_show(block.text)} of pool {_show(pool.name)} overlaps "
                    f"{_show(other.text)} of pool {_show(other_pool.name)} ({other_key})",
                )


def _reject_overlaps_across(
    problems: _Problems,
    namespace: str,
    pools: tuple[PoolConfig, ...],
    other_stacks: Mapping[str, Any],
) -> None:
    for other_stack, raw_pools in sorted(other_stacks.items()):
        other_problems = _Problems(f"Pulumi.{other_stack}.yaml", namespace)
        other_pools = _parse_pools(other_problems, raw_pools)
        other_problems.raise_if_any(
            f"Cannot check address overlaps: stack {_show(other_stack)} has invalid pools"
        )
        for key, pool, block in _indexed_blocks(pools):
            for _, other_pool, other in _indexed_blocks(other_pools):
                if block.overlaps(other):
                    problems.add(
                        key,
                        f"{_show(block.text)} of pool {_show(pool.name)} overlaps "
                        f"{_show(other.text)} of pool {_show(other_pool.name)} in stack "
                        f"{_show(other_stack)} (Pulumi.{other_stack}.yaml); every cluster "
                        "on the LAN needs its own range",
                    )


def _decode(value: Any) -> Any:
    """Config values reach the program as strings; objects, lists, numbers and booleans as JSON.

    Stack files hold `pulumi config set KEY true` as the string "true" too, so their top-level values
    need the same decoding.
    """
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def current_stack_values(namespace: str) -> dict[str, Any]:
    """Every config value of the running stack under `namespace`, decoded, keyed without namespace."""
    # pulumi.Config answers only for keys one asks for; typo detection needs the whole set, which the
    # language host passes in PULUMI_CONFIG and tests pass through set_all_config.
    raw = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    prefix = f"{namespace}:"
    return {key[len(prefix) :]: _decode(value) for key, value in raw.items() if key.startswith(prefix)}


def _stack_file_values(project_dir: Path, stack: str) -> dict[str, Any]:
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    try:
        document = yaml.safe_load(stack_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{stack_file.name} is not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"cannot read {stack_file.name}: {error.strerror}") from None
    config: dict[str, Any] = document.get("config") or {}
    return config


def other_stacks_pools(project_dir: Path, namespace: str, current_stack: str) -> dict[str, Any]:
    """The raw `pools` value of every other committed stack file of the project."""
    pools: dict[str, Any] = {}
    for stack in stack_names(project_dir):
        config = _stack_file_values(project_dir, stack) if stack != current_stack else {}
        if f"{namespace}:pools" in config:
            pools[stack] = config[f"{namespace}:pools"]
    return pools


def load_stack_file_config(project_dir: Path, stack: str) -> StackConfig:
    """A stack's configuration read from its file, outside a Pulumi run (tools, not the program).

    Encrypted values are left out: they need the passphrase, and no tool outside the program needs them.
    A stack without a file is a ConfigError that lists the stacks there are.
    """
    known = stack_names(project_dir)
    if stack not in known:
        raise ConfigError(
            f"no stack {stack!r}: there is no Pulumi.{stack}.yaml (stacks: {', '.join(known) or 'none'})"
        )
    namespace = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    prefix = f"{namespace}:"
    values = {
        key[len(prefix) :]: _decode(value)
        for key, value in _stack_file_values(project_dir, stack).items()
        if key.startswith(prefix) and not (isinstance(value, dict) and set(value) == {"secure"})
    }
    return parse_stack_config(stack, namespace, values, other_stacks_pools(project_dir, namespace, stack))


def load_stack_config(project_dir: Path) -> StackConfig:
    """Read and validate the running stack's configuration. Raises ConfigError before anything is declared."""
    namespace = pulumi.get_project()
    stack = pulumi.get_stack()
    return parse_stack_config(
        stack,
        namespace,
        current_stack_values(namespace),
        other_stacks_pools(project_dir, namespace, stack),
    )
