"""What a stack's configuration is, once read and validated: plain frozen dataclasses, no parsing."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CHART_VERSION = "0.14.3"
DEFAULT_CHART_REPOSITORY = "https://metallb.github.io/metallb"
DEFAULT_WEBHOOK_TIMEOUT_SECONDS = 300
DEFAULT_BOOTSTRAP_PORT = 4433
DEFAULT_BOOTSTRAP_HOSTNAME = "bootstrap.macula.local"
DEFAULT_ASSIGN_TIMEOUT_SECONDS = 180


class ConfigError(pulumi.RunError):
    """A stack's configuration is invalid. RunError makes Pulumi print the message without a traceback."""


@dataclass(frozen=True)
class AddressBlock:
    """One entry of a pool's `addresses`, or a reservation: a CIDR or a `first-last` range, as the first and
    last address. `position` is the entry's index in the file, for messages."""

    text: str
    first: IPAddress
    last: IPAddress
    position: int = field(default=0, compare=False)

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def overlaps(self, other: AddressBlock) -> bool:
        return (
            self.first.version == other.first.version
            and int(self.first) <= int(other.last)
            and int(other.first) <= int(self.last)
        )

    def contains(self, address: IPAddress) -> bool:
        return address.version == self.first.version and int(self.first) <= int(address) <= int(self.last)

    def describe(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True)
class PoolConfig:
    """A MetalLB IPAddressPool. Unset options are left to the CRD's defaults. `index` is the pool's index
    in the file, for messages."""

    name: str
    addresses: tuple[AddressBlock, ...]
    auto_assign: bool | None = None
    avoid_buggy_ips: bool | None = None
    index: int = field(default=0, compare=False)

    def contains(self, address: IPAddress) -> bool:
        return any(block.contains(address) for block in self.addresses)

    @property
    def size(self) -> int:
        return sum(block.size for block in self.addresses)


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
    # How long `up` waits for MetalLB to give the Service its address.
    assign_timeout_seconds: int = DEFAULT_ASSIGN_TIMEOUT_SECONDS


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
    # The keys set with --secret: whatever comes of their values stays secret.
    secret_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Reservation:
    """Addresses of the LAN that no pool may take, and why. `addresses` None is a placeholder the user has
    not filled in yet; `key` is where it is written in Pulumi.yaml, for messages."""

    reason: str
    addresses: AddressBlock | None
    key: str


@dataclass(frozen=True)
class LanPlan:
    """The LAN that every cluster's nodes, clients and pools share: Pulumi.yaml's `lan` value. A dual-stack
    LAN has one subnet per address family."""

    subnets: tuple[IPNetwork, ...]
    reservations: tuple[Reservation, ...]
    # The file it is written in: Pulumi.yaml, or the stack file of a stack on a network of its own.
    source: str = "Pulumi.yaml"

    def subnet_for(self, version: int) -> IPNetwork | None:
        return next((subnet for subnet in self.subnets if subnet.version == version), None)
