"""Reads one stack's values into a StackConfig, reporting every problem of the stack file at once."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from stack_config.addresses import AddressError, parse_block
from stack_config.fields import (
    SEMVER,
    SSH_PUBLIC_KEY,
    UNIX_USER,
    Problems,
    check_keys,
    host_name,
    mapping,
    object_name,
    optional_bool,
    port_number,
    reject_duplicates,
    sequence,
    show,
    string,
)
from stack_config.fleet import Fleet, check_pools_against_fleet, indexed_blocks
from stack_config.model import (
    DEFAULT_ASSIGN_TIMEOUT_SECONDS,
    DEFAULT_BOOTSTRAP_HOSTNAME,
    DEFAULT_BOOTSTRAP_PORT,
    DEFAULT_CHART_REPOSITORY,
    DEFAULT_CHART_VERSION,
    DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
    AddressBlock,
    AdvertisementConfig,
    BootstrapConfig,
    ChartConfig,
    DnsFixConfig,
    IPAddress,
    PoolConfig,
    StackConfig,
)


def parse_other_stack_pools(namespace: str, stack: str, value: Any) -> tuple[PoolConfig, ...]:
    """Another stack's `pools`, to check this stack's against; ConfigError naming its file when invalid."""
    problems = Problems(f"Pulumi.{stack}.yaml", namespace)
    pools = parse_pools(problems, value)
    problems.raise_if_any(f"Cannot check address overlaps: stack {show(stack)} has invalid pools")
    return pools


def parse_pools(problems: Problems, value: Any) -> tuple[PoolConfig, ...]:
    """A stack's `pools`; each pool and address keeps its index in the file, for messages."""
    entries = sequence(problems, "pools", value)
    if entries is None:
        return ()
    if not entries:
        problems.add("pools", "needs at least one pool")
    pools: list[PoolConfig] = []
    for index, entry in enumerate(entries):
        key = f"pools[{index}]"
        pool = mapping(problems, key, entry)
        if pool is None:
            continue
        check_keys(problems, key, pool, ("name", "addresses", "autoAssign", "avoidBuggyIPs"))
        name = object_name(problems, f"{key}.name", pool.get("name"))
        addresses = sequence(problems, f"{key}.addresses", pool.get("addresses"))
        blocks: list[AddressBlock] = []
        if addresses is not None:
            if not addresses:
                problems.add(f"{key}.addresses", "is empty: a pool needs at least one address range")
            for position, address in enumerate(addresses):
                text = string(problems, f"{key}.addresses[{position}]", address)
                if text is None:
                    continue
                try:
                    blocks.append(parse_block(text, position))
                except AddressError as error:
                    problems.add(f"{key}.addresses[{position}]", str(error))
        auto_assign = optional_bool(problems, f"{key}.autoAssign", pool.get("autoAssign"))
        avoid_buggy = optional_bool(problems, f"{key}.avoidBuggyIPs", pool.get("avoidBuggyIPs"))
        if name is not None:
            pools.append(PoolConfig(name, tuple(blocks), auto_assign, avoid_buggy, index))
    reject_duplicates(problems, "pools", [pool.name for pool in pools])
    return tuple(pools)


def _parse_node_selector(problems: Problems, key: str, value: Any) -> Mapping[str, Any] | None:
    selector = mapping(problems, key, value)
    if selector is None:
        return None
    check_keys(problems, key, selector, ("matchLabels", "matchExpressions"))
    labels = selector.get("matchLabels", {})
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        problems.add(f"{key}.matchLabels", f"expected a map of strings, got {show(labels)}")
        return None
    expressions = sequence(problems, f"{key}.matchExpressions", selector.get("matchExpressions", []))
    if expressions is None:
        return None
    for index, expression in enumerate(expressions):
        expression_key = f"{key}.matchExpressions[{index}]"
        fields = mapping(problems, expression_key, expression)
        if fields is None:
            return None
        check_keys(problems, expression_key, fields, ("key", "operator", "values"))
        string(problems, f"{expression_key}.key", fields.get("key"))
        operator = fields.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            problems.add(
                f"{expression_key}.operator",
                f"{show(operator)} is not one of In, NotIn, Exists, DoesNotExist",
            )
    return dict(selector)


def _parse_advertisements(
    problems: Problems, value: Any, pools: tuple[PoolConfig, ...]
) -> tuple[AdvertisementConfig, ...]:
    pool_names = tuple(pool.name for pool in pools)
    if value is None:
        # The common case: one L2 advertisement of every pool of the stack.
        return (AdvertisementConfig("lan-advertisement", pool_names),) if pool_names else ()
    entries = sequence(problems, "advertisements", value)
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
        advertisement = mapping(problems, key, entry)
        if advertisement is None:
            continue
        check_keys(problems, key, advertisement, ("name", "pools", "interfaces", "nodeSelectors"))
        name = object_name(problems, f"{key}.name", advertisement.get("name"))
        named_pools = sequence(problems, f"{key}.pools", advertisement.get("pools", list(pool_names)))
        if named_pools == []:
            # MetalLB would read an empty list as "every pool"; say so explicitly instead.
            problems.add(f"{key}.pools", "is empty; leave it out to advertise every pool of the stack")
        for position, pool_name in enumerate(named_pools or []):
            if pool_name not in pool_names:
                problems.add(
                    f"{key}.pools[{position}]",
                    f"{show(pool_name)} is not a pool of this stack "
                    f"(pools: {', '.join(pool_names) or 'none'})",
                )
        if named_pools:
            reject_duplicates(problems, f"{key}.pools", [str(pool) for pool in named_pools], "pool")
        interfaces = sequence(problems, f"{key}.interfaces", advertisement.get("interfaces", []))
        for position, interface in enumerate(interfaces or []):
            string(problems, f"{key}.interfaces[{position}]", interface)
        if interfaces:
            reject_duplicates(problems, f"{key}.interfaces", [str(item) for item in interfaces], "interface")
        selectors = sequence(problems, f"{key}.nodeSelectors", advertisement.get("nodeSelectors", []))
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
    reject_duplicates(problems, "advertisements", [item.name for item in advertisements])
    advertised = {name for advertisement in advertisements for name in advertisement.pools}
    for index, name in enumerate(pool_names):
        if advertisements and name not in advertised:
            problems.add(
                f"pools[{index}]",
                f"pool {show(name)} is in no advertisement: its addresses would be assigned but never "
                "announced",
            )
    return tuple(advertisements)


def _parse_chart(problems: Problems, value: Any) -> ChartConfig:
    if value is None:
        return ChartConfig()
    chart = mapping(problems, "metallb", value)
    if chart is None:
        return ChartConfig()
    check_keys(
        problems,
        "metallb",
        chart,
        ("chartVersion", "chartRepository", "chartPath", "frrEnabled", "webhookTimeoutSeconds"),
    )
    version = chart.get("chartVersion", DEFAULT_CHART_VERSION)
    if not isinstance(version, str) or not SEMVER.match(version):
        problems.add("metallb.chartVersion", f"{show(version)} is not a chart version like 0.14.3")
    repository = chart.get("chartRepository", DEFAULT_CHART_REPOSITORY)
    if not isinstance(repository, str) or not re.match(r"^(https?|oci)://\S+$", repository):
        problems.add(
            "metallb.chartRepository",
            f"{show(repository)} is not an http(s):// or oci:// chart repository URL",
        )
    path = chart.get("chartPath")
    if path is not None:
        path = string(problems, "metallb.chartPath", path)
        for ignored in ("chartRepository", "chartVersion"):
            if ignored in chart:
                problems.add(
                    "metallb.chartPath",
                    f"set either chartPath (a local chart, whatever version it holds) or {ignored}, not both",
                )
    frr_enabled = optional_bool(problems, "metallb.frrEnabled", chart.get("frrEnabled"))
    timeout = chart.get("webhookTimeoutSeconds", DEFAULT_WEBHOOK_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 10 <= timeout <= 3600:
        problems.add(
            "metallb.webhookTimeoutSeconds",
            f"{show(timeout)} is not a whole number of seconds from 10 to 3600",
        )
        timeout = DEFAULT_WEBHOOK_TIMEOUT_SECONDS
    return ChartConfig(
        version=version if isinstance(version, str) else DEFAULT_CHART_VERSION,
        repository=repository if isinstance(repository, str) else DEFAULT_CHART_REPOSITORY,
        path=path,
        frr_enabled=bool(frr_enabled),
        webhook_timeout_seconds=timeout,
    )


def _parse_bootstrap(problems: Problems, value: Any, pools: tuple[PoolConfig, ...]) -> BootstrapConfig | None:
    if value is None:
        return None
    bootstrap = mapping(problems, "bootstrap", value)
    if bootstrap is None:
        return None
    check_keys(
        problems,
        "bootstrap",
        bootstrap,
        ("namespace", "service", "ip", "pool", "hostname", "port", "assignTimeoutSeconds"),
    )
    assign_timeout = bootstrap.get("assignTimeoutSeconds", DEFAULT_ASSIGN_TIMEOUT_SECONDS)
    if (
        isinstance(assign_timeout, bool)
        or not isinstance(assign_timeout, int)
        or not 10 <= assign_timeout <= 3600
    ):
        problems.add(
            "bootstrap.assignTimeoutSeconds",
            f"{show(assign_timeout)} is not a whole number of seconds from 10 to 3600",
        )
        assign_timeout = DEFAULT_ASSIGN_TIMEOUT_SECONDS
    namespace = object_name(problems, "bootstrap.namespace", bootstrap.get("namespace", "macula"))
    service = object_name(problems, "bootstrap.service", bootstrap.get("service", "macula-bootstrap"))
    port = port_number(problems, "bootstrap.port", bootstrap.get("port", DEFAULT_BOOTSTRAP_PORT))
    hostname = bootstrap.get("hostname")
    if hostname is not None:
        hostname = host_name(problems, "bootstrap.hostname", hostname, qualified=True)
    pool_names = [pool.name for pool in pools]
    pool_name = bootstrap.get("pool")
    if pool_name is not None and pool_name not in pool_names:
        problems.add(
            "bootstrap.pool",
            f"{show(pool_name)} is not a pool of this stack (pools: {', '.join(pool_names) or 'none'})",
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
        assign_timeout_seconds=assign_timeout,
    )


def _pinned_ip(
    problems: Problems, value: Any, pools: tuple[PoolConfig, ...], pool_name: str | None
) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        ip = None
    if ip is None:
        problems.add("bootstrap.ip", f"{show(value)} is not an IP address")
        return None
    candidates = [pool for pool in pools if pool_name in (None, pool.name)]
    owner = next((pool for pool in candidates if pool.contains(ip)), None)
    if owner is None:
        where = f"pool {show(pool_name)}" if pool_name else "any pool of this stack"
        ranges = ", ".join(block.text for pool in candidates for block in pool.addresses) or "none"
        problems.add(
            "bootstrap.ip", f"{show(value)} is outside {where} ({ranges}); MetalLB could never assign it"
        )
        return None
    if owner.avoid_buggy_ips and ip.version == 4 and ip.packed[-1] in (0, 255):
        problems.add(
            "bootstrap.ip",
            f"{show(value)} ends in .0 or .255, which pool {show(owner.name)} avoids (avoidBuggyIPs)",
        )
        return None
    return ip


def _parse_dns_fix(
    problems: Problems, value: Any, private_key: Any, bootstrap: BootstrapConfig | None
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
    dns_fix = mapping(problems, "dnsFix", value)
    if dns_fix is None:
        return None
    if "confDir" in dns_fix:
        problems.add(
            "dnsFix.confDir",
            "is no longer used: the DNS fix reads what the running dnsmasq reads (its command line, its main "
            "file and every file and directory those name); remove the key",
        )
    check_keys(
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
    if optional_bool(problems, "dnsFix.enabled", dns_fix.get("enabled")) is False:
        return None
    if "host" not in dns_fix:
        problems.add("dnsFix.host", "is missing: the DNS fix needs the host that runs dnsmasq")
        host = None
    else:
        host = _ssh_host(problems, dns_fix["host"])
    user = dns_fix.get("user")
    if not isinstance(user, str) or not UNIX_USER.match(user):
        problems.add("dnsFix.user", f"{show(user)} is not a login name on the DNS host")
        user = None
    port = port_number(problems, "dnsFix.port", dns_fix.get("port", 22))
    host_key = dns_fix.get("hostKey")
    if host_key is not None and (not isinstance(host_key, str) or not SSH_PUBLIC_KEY.match(host_key.strip())):
        problems.add(
            "dnsFix.hostKey",
            f"{show(host_key)} is not a public key line like 'ssh-ed25519 AAAA...' "
            "(take it from `ssh-keyscan -t ed25519 HOST`, without the host name)",
        )
        host_key = None
    default_hostname = bootstrap.hostname if bootstrap and bootstrap.hostname else DEFAULT_BOOTSTRAP_HOSTNAME
    hostname = host_name(
        problems, "dnsFix.hostname", dns_fix.get("hostname", default_hostname), qualified=True
    )
    restart_command = dns_fix.get("restartCommand")
    if restart_command is not None and (not isinstance(restart_command, str) or not restart_command.strip()):
        problems.add(
            "dnsFix.restartCommand",
            f"{show(restart_command)} is not a shell command, such as 'nmcli general reload dns-full'",
        )
        restart_command = None
    pid_file = dns_fix.get("pidFile")
    if pid_file is not None and (not isinstance(pid_file, str) or not pid_file.startswith("/")):
        problems.add(
            "dnsFix.pidFile", f"{show(pid_file)} is not an absolute path, such as /run/dnsmasq/dnsmasq.pid"
        )
        pid_file = None
    open_firewall = optional_bool(problems, "dnsFix.openFirewall", dns_fix.get("openFirewall"))
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


def _ssh_host(problems: Problems, value: Any) -> str | None:
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    return host_name(problems, "dnsFix.host", value, qualified=False)


def _parse_node_names(problems: Problems, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    names = sequence(problems, key, value) or []
    parsed = [object_name(problems, f"{key}[{index}]", name) for index, name in enumerate(names)]
    valid = [name for name in parsed if name is not None]
    # Each name becomes a command of its own, named after the node: a repeat would be a duplicate URN.
    reject_duplicates(problems, key, valid, "node")
    return tuple(valid)


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
    stack: str,
    namespace: str,
    values: Mapping[str, Any],
    fleet: Fleet,
    secret_keys: frozenset[str] = frozenset(),
) -> StackConfig:
    """Validate one stack's values (keys without the namespace) against the LAN plan and the other stacks.

    `secret_keys` are the keys set with --secret. Raises ConfigError listing every problem.
    """
    stack_file = f"Pulumi.{stack}.yaml"
    problems = Problems(stack_file, namespace)
    check_keys(problems, "", values, KNOWN_KEYS)
    kube_context = string(problems, "kubeContext", values.get("kubeContext"))
    kubeconfig = values.get("kubeconfig")
    if kubeconfig is not None:
        kubeconfig = string(problems, "kubeconfig", kubeconfig)
        if kubeconfig is not None and kubeconfig.startswith("~"):
            # Nothing expands it on the way to kubectl, and expanding it here would make the commands'
            # text differ per machine, which drift checks would report.
            problems.add(
                "kubeconfig",
                f"{show(kubeconfig)} starts with ~, which is not expanded; give the full path, or leave "
                "kubeconfig unset and use $KUBECONFIG",
            )
            kubeconfig = None
    chart = _parse_chart(problems, values.get("metallb"))
    if "pools" not in values:
        problems.add("pools", "is missing: every cluster needs at least one address pool")
        pools: tuple[PoolConfig, ...] = ()
    else:
        pools = parse_pools(problems, values["pools"])
    advertisements = _parse_advertisements(problems, values.get("advertisements"), pools)
    _reject_overlaps_within(problems, pools)
    check_pools_against_fleet(problems, pools, fleet)
    bootstrap = _parse_bootstrap(problems, values.get("bootstrap"), pools)
    if "sshPrivateKey" in values and "sshPrivateKey" not in secret_keys:
        # The stack file is committed: a plaintext key there is a leaked key.
        problems.add(
            "sshPrivateKey",
            "is stored in plaintext (value not shown); set it as a secret: "
            f"pulumi config set --stack {stack} --secret sshPrivateKey < ~/.ssh/id_ed25519",
        )
    dns_fix = _parse_dns_fix(problems, values.get("dnsFix"), values.get("sshPrivateKey"), bootstrap)
    clear_lb_exclusion = _parse_node_names(
        problems, "clearLoadBalancerExclusion", values.get("clearLoadBalancerExclusion")
    )
    strict_arp = optional_bool(problems, "strictArp", values.get("strictArp"))
    adopt_existing = optional_bool(problems, "adoptExisting", values.get("adoptExisting"))
    problems.raise_if_any(f"Invalid configuration for stack {show(stack)}")
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
        secret_keys=frozenset(secret_keys & set(values)),
    )


def _reject_overlaps_within(problems: Problems, pools: tuple[PoolConfig, ...]) -> None:
    blocks = indexed_blocks(pools)
    for later_index, (key, pool, block) in enumerate(blocks):
        for other_key, other_pool, other in blocks[:later_index]:
            if block.overlaps(other):
                problems.add(
                    key,
                    f"{show(block.text)} of pool {show(pool.name)} overlaps "
                    f"{show(other.text)} of pool {show(other_pool.name)} ({other_key})",
                )
