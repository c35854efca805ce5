"""Cluster settings without which MetalLB assigns an IP that nobody answers ARP for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from secret_inputs import kept_secret
from shell_scripts import kubectl_target, script_command


@dataclass(frozen=True)
class ArpReadinessArgs:
    kube_context: str
    kubeconfig: str | None
    # Nodes to take the exclude-from-external-load-balancers label off (KinD's control plane).
    clear_lb_exclusion: Sequence[str]
    # Turn on kube-proxy's strictARP (needed with kube-proxy in IPVS mode).
    strict_arp: bool
    # Changes when the cluster is rebuilt, so the commands run again on the new cluster.
    cluster_identity: pulumi.Input[str]
    # The context, kubeconfig or node names were set with --secret: the command text is kept secret.
    secret: bool = False


def exclusion_commands(args: ArpReadinessArgs, node: str) -> tuple[str, str]:
    """The create and delete text: remove the label, and put it back on destroy if it was removed."""
    target = [*kubectl_target(args.kube_context, args.kubeconfig), "--node", node]
    return (
        script_command("lb-exclusion-label.sh", "remove", *target),
        script_command("lb-exclusion-label.sh", "restore", *target),
    )


def strict_arp_command(args: ArpReadinessArgs) -> str:
    return script_command("kube-proxy-strict-arp.sh", *kubectl_target(args.kube_context, args.kubeconfig))


class ArpReadiness(pulumi.ComponentResource):
    """Clears the speaker exclusion on the named nodes and turns on strictARP, each only when asked."""

    commands: list[command.local.Command]

    def __init__(self, name: str, args: ArpReadinessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("macula:lan:ArpReadiness", name, None, opts)
        self.commands = []
        for node in args.clear_lb_exclusion:
            create, delete = exclusion_commands(args, node)
            self.commands.append(
                command.local.Command(
                    f"{name}-include-{node}",
                    create=kept_secret(create, args.secret),
                    delete=kept_secret(delete, args.secret),
                    triggers=[args.cluster_identity],
                    # On a rebuilt cluster the old record's restore must run before the new removal,
                    # not after it, or it would put the label back for good.
                    opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
                )
            )
        if args.strict_arp:
            # Left on at destroy: other load balancers on the cluster may rely on it, and it is harmless.
            self.commands.append(
                command.local.Command(
                    f"{name}-strict-arp",
                    create=kept_secret(strict_arp_command(args), args.secret),
                    triggers=[args.cluster_identity],
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.register_outputs({"steps": [step.stdout for step in self.commands]})
