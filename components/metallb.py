"""MetalLB from its Helm chart, in a namespace of its own, and a gate that opens once its webhook serves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from shell_scripts import kubectl_target, script_command
from stack_config import ChartConfig

RELEASE_NAME = "metallb"

# The speaker needs host networking and NET_RAW to answer ARP, which only the privileged level allows.
POD_SECURITY_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "privileged" for mode in ("enforce", "audit", "warn")
}

# The chart ships the bgppeers CRD with a placeholder CA bundle that MetalLB's controller replaces with its
# own after install; without ignoring it every refresh would report the CRD as drifted. (The webhook
# configuration's caBundle needs nothing: the chart leaves it out, so Pulumi never owns that field.)
CONTROLLER_MANAGED_FIELDS = {
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition": [
        "spec.conversion.webhook.clientConfig.caBundle"
    ],
}


@dataclass(frozen=True)
class MetalLBArgs:
    chart: ChartConfig
    # kubectl runs the webhook probe against the same cluster as the provider.
    kube_context: str
    kubeconfig: str | None = None
    namespace: str = "metallb-system"


def chart_values(chart: ChartConfig) -> dict[str, Any]:
    """The chart values this program sets; every path exists in the 0.14.3 chart's values.yaml."""
    return {"speaker": {"frr": {"enabled": chart.frr_enabled}}}


def chart_args(chart: ChartConfig, namespace: pulumi.Input[str]) -> k8s.helm.v4.ChartArgs:
    if chart.path is not None:
        # A local chart is whatever the directory or archive holds; Helm checks the version against it.
        return k8s.helm.v4.ChartArgs(
            chart=chart.path,
            name=RELEASE_NAME,
            namespace=namespace,
            values=chart_values(chart),
        )
    return k8s.helm.v4.ChartArgs(
        chart="metallb",
        version=chart.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=chart.repository),
        name=RELEASE_NAME,
        namespace=namespace,
        values=chart_values(chart),
    )


def ignore_controller_managed_fields(
    args: pulumi.ResourceTransformArgs,
) -> pulumi.ResourceTransformResult | None:
    """Transform for the chart's children: leave the CA bundles the controller rewrites to it."""
    fields = CONTROLLER_MANAGED_FIELDS.get(args.type_)
    if fields is None:
        return None
    return pulumi.ResourceTransformResult(
        props=args.props,
        opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(ignore_changes=fields)),
    )


def webhook_gate_command(args: MetalLBArgs) -> str:
    return script_command(
        "wait-for-metallb-webhook.sh",
        *kubectl_target(args.kube_context, args.kubeconfig),
        "--namespace",
        args.namespace,
        "--timeout",
        str(args.chart.webhook_timeout_seconds),
    )


class MetalLB(pulumi.ComponentResource):
    """MetalLB installed and admitting configuration.

    Depend on `webhook_gate` before declaring any MetalLB custom resource.
    """

    namespace: pulumi.Output[str]
    # The namespace's UID changes when the cluster is rebuilt; commands key their re-runs on it.
    cluster_identity: pulumi.Output[str]
    chart: k8s.helm.v4.Chart
    webhook_gate: command.local.Command

    def __init__(self, name: str, args: MetalLBArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("macula:lan:MetalLB", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.namespace, labels=POD_SECURITY_LABELS),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace = namespace.metadata.name
        self.cluster_identity = namespace.metadata.uid
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            chart_args(args.chart, self.namespace),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[namespace],
                transforms=[ignore_controller_managed_fields],
            ),
        )
        self.webhook_gate = command.local.Command(
            f"{name}-webhook-gate",
            create=webhook_gate_command(args),
            # Probe again whenever the release changes (an upgrade restarts the controller) or the
            # cluster is rebuilt, never on a plain `up`.
            triggers=[
                self.cluster_identity,
                args.chart.path or args.chart.version,
                json.dumps(chart_values(args.chart), sort_keys=True),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.chart]),
        )
        self.register_outputs({"namespace": self.namespace, "webhookGate": self.webhook_gate.stdout})
