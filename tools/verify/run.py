"""One stack's checks, in order: the Kubernetes table, then the bootstrap name and port, then ARP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kube_client import DEFAULT_KUBECTL_TIMEOUT, Kubectl, KubectlError
from stack_config import StackConfig
from tools.verify.arp_check import arp_check
from tools.verify.check import Check
from tools.verify.cluster import ClusterReads, service_ips
from tools.verify.dns_check import dns_check
from tools.verify.kube_checks import kube_checks
from tools.verify.quic_probe import udp_check

# Long enough for Linux to give up on ARP (3 probes, 1 s apart) and say so; see quic_probe.probe_udp.
DEFAULT_TIMEOUT = 4.0


@dataclass(frozen=True)
class Options:
    resolver: tuple[str, int] | None = None
    timeout: float = DEFAULT_TIMEOUT
    strict_udp: bool = False
    kubectl_timeout: float = DEFAULT_KUBECTL_TIMEOUT
    arp: bool = True
    # The Pulumi project, for the URNs of the commands a fix runs again.
    project: str = "macula-lan"


def cluster_reads(config: StackConfig, options: Options) -> ClusterReads:
    return ClusterReads(Kubectl(config.kube_context, config.kubeconfig, options.kubectl_timeout))


def iter_checks(config: StackConfig, options: Options, reads: ClusterReads | None = None) -> Iterator[Check]:
    """Every check in order, each as soon as it is made. `reads` holds what the caller read already."""
    reads = reads if reads is not None else cluster_reads(config, options)
    yield from kube_checks(config, reads, options.project)
    yield from _bootstrap_checks(config, options, reads)
    yield (
        arp_check(config, reads.nodes_or_error(), options.timeout)
        if options.arp
        else Check("skip", "arp", "not probed (--no-arp)")
    )


def _bootstrap_checks(config: StackConfig, options: Options, reads: ClusterReads) -> Iterator[Check]:
    bootstrap = config.bootstrap
    if bootstrap is None:
        for name in ("dns", "udp"):
            yield Check("skip", name, "bootstrap is not configured for this stack")
        return
    # The stack file is the truth: a pinned IP is what DNS and clients should use, whatever the Service says.
    if bootstrap.ip is not None:
        expected = [bootstrap.ip]
    else:
        try:
            expected = service_ips(reads.get("services", bootstrap.namespace, bootstrap.service))
        except KubectlError:
            # Nothing to compare with or to probe; the service check says why (error, exit 2).
            for name in ("dns", "udp"):
                yield Check("skip", name, "no IP is pinned and the Service could not be read (see service)")
            return

    if bootstrap.hostname is None:
        yield Check("skip", "dns", "no hostname configured (bootstrap.hostname)")
    else:
        yield dns_check(bootstrap.hostname, expected, options.resolver, options.timeout)

    if not expected:
        yield Check("skip", "udp", "no address to probe: no IP is pinned and the Service has none")
    else:
        yield udp_check(expected[0], bootstrap.port, options.timeout, strict=options.strict_udp)
