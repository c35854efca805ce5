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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.config
import yaml

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_CHART_VERSION = "0.14.3"
DEFAULT_CHART_REPOSITORY = "https://metallb.github.io/metallb"
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 300

# Kubernetes object names (RFC 1123 subdomain), which pools and advertisements become.
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
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
class StackConfig:
    stack: str
    stack_file: str
    kube_context: str
    kubeconfig: str | None
    chart: ChartConfig
    pools: tuple[PoolConfig, ...]
    advertisements: tuple[AdvertisementConfig, ...]


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
    advertisements: list[AdvertisementConfig] = []
    for index, entry in enumerate(entries):
        key = f"advertisements[{index}]"
        advertisement = _mapping(problems, key, entry)
        if advertisement is None:
            continue
        _check_keys(problems, key, advertisement, ("name", "pools", "interfaces", "nodeSelectors"))
        name = _object_name(problems, f"{key}.name", advertisement.get("name"))
        named_pools = _list(problems, f"{key}.pools", advertisement.get("pools", list(pool_names)))
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
        if "chartRepository" in chart:
            problems.add(
                "metallb.chartPath",
                "set either chartPath (a local chart) or chartRepository, not both",
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


KNOWN_KEYS = ("kubeContext", "kubeconfig", "metallb", "pools", "advertisements")


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
    chart = _parse_chart(problems, values.get("metallb"))
    if "pools" not in values:
        problems.add("pools", "is missing: every cluster needs at least one address pool")
        pools: tuple[PoolConfig, ...] = ()
    else:
        pools = _parse_pools(problems, values["pools"])
    advertisements = _parse_advertisements(problems, values.get("advertisements"), pools)
    _reject_overlaps_within(problems, pools)
    _reject_overlaps_across(problems, namespace, pools, other_stacks)
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
    """Config values reach the program as strings; objects, lists, numbers and booleans as JSON."""
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


def other_stacks_pools(project_dir: Path, namespace: str, current_stack: str) -> dict[str, Any]:
    """The raw `pools` value of every other committed stack file of the project."""
    pools: dict[str, Any] = {}
    for stack_file in sorted(project_dir.glob("Pulumi.*.yaml")):
        stack = stack_file.name[len("Pulumi.") : -len(".yaml")]
        if stack == current_stack:
            continue
        try:
            document = yaml.safe_load(stack_file.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{stack_file.name} is not valid YAML: {error}") from None
        config = document.get("config") or {}
        if f"{namespace}:pools" in config:
            pools[stack] = config[f"{namespace}:pools"]
    return pools


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
