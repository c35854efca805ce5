"""MetalLB from its Helm chart, in a namespace of its own, and a gate that opens once its webhook serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

import resource_names
from metallb_survey import NAMESPACE
from resource_names import marks
from secret_inputs import kept_secret
from shell_scripts import kubectl_target, script_command
from stack_config import ChartConfig

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
    kubeconfig: str | None
    # The stack's mark (metallb_survey.MARK_STACK) on everything it installs.
    stack_mark: str
    # Take over the runbook's or a Helm release's MetalLB: remove the runbook's workloads as the chart's
    # come up, and drop Helm's release records once the chart owns the objects.
    adopt_existing: bool = False
    namespace: str = NAMESPACE
    # The context or kubeconfig was set with --secret: the commands' text is kept secret.
    secret: bool = False


def chart_values(chart: ChartConfig) -> dict[str, Any]:
    """The chart values this program sets; every path exists in the 0.14.3 chart's values.yaml."""
    return {"speaker": {"frr": {"enabled": chart.frr_enabled}}}


def chart_args(chart: ChartConfig, namespace: pulumi.Input[str]) -> k8s.helm.v4.ChartArgs:
    if chart.path is not None:
        # A local chart is whatever the directory or archive holds; Helm checks the version against it.
        return k8s.helm.v4.ChartArgs(
            chart=chart.path,
            name=resource_names.RELEASE_NAME,
            namespace=namespace,
            values=chart_values(chart),
        )
    return k8s.helm.v4.ChartArgs(
        chart="metallb",
        version=chart.version,
        repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=chart.repository),
        name=resource_names.RELEASE_NAME,
        namespace=namespace,
        values=chart_values(chart),
    )


def chart_children_transform(
    stack_mark: str,
) -> Callable[[pulumi.ResourceTransformArgs], pulumi.ResourceTransformResult]:
    """Transform for the chart's children: mark each one, and leave the CA bundles to the controller."""

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
        props = dict(args.props)
        metadata = props.get("metadata")
        if isinstance(metadata, dict):
            annotations = metadata.get("annotations")
            child_urn = resource_names.urn(
                stack_mark, [resource_names.METALLB_TYPE, resource_names.CHART_TYPE, args.type_], args.name
            )
            props["metadata"] = {
                **metadata,
                "annotations": {
                    **(annotations if isinstance(annotations, dict) else {}),
                    **marks(stack_mark, child_urn),
                },
            }
        opts = args.opts
        fields = CONTROLLER_MANAGED_FIELDS.get(args.type_)
        if fields is not None:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=fields))
        return pulumi.ResourceTransformResult(props=props, opts=opts)

    return transform


def metallb_script_command(
    args: MetalLBArgs, script: str, stage: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> str:
    """A MetalLB script (at `stage`, if it has stages) against the stack's cluster and namespace, bounded
    by the webhook timeout, with `extra` arguments last."""
    return script_command(
        script,
        *stage,
        *kubectl_target(args.kube_context, args.kubeconfig),
        "--namespace",
        args.namespace,
        "--timeout",
        str(args.chart.webhook_timeout_seconds),
        *extra,
    )


def webhook_gate_command(args: MetalLBArgs) -> str:
    return metallb_script_command(args, "wait-for-metallb-webhook.sh")


def takeover_command(args: MetalLBArgs, stage: str, *extra: str) -> str:
    """scripts/take-over-metallb.sh at one stage: `webhook-entry`, `handover` or `forget-helm-release`."""
    return metallb_script_command(args, "take-over-metallb.sh", (stage,), extra)


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
        super().__init__(resource_names.METALLB_TYPE, name, None, opts)
        namespace_name = resource_names.namespace(name)
        namespace_urn = resource_names.urn(
            args.stack_mark,
            [resource_names.METALLB_TYPE, resource_names.KIND_TYPES["Namespace"]],
            namespace_name,
        )
        namespace = k8s.core.v1.Namespace(
            namespace_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels=POD_SECURITY_LABELS,
                annotations=marks(args.stack_mark, namespace_urn),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace = namespace.metadata.name
        self.cluster_identity = namespace.metadata.uid
        # Takes the runbook's workloads away as the chart's come up: it waits for each of the chart's
        # objects to exist, so it runs beside the chart rather than after it (the chart's speakers cannot
        # start while the runbook's hold the host ports). Declared whenever the stack may adopt, with
        # text that does not depend on what it finds, so that a later `up` sees no change.
        handover = (
            command.local.Command(
                resource_names.runbook_handover(name),
                create=kept_secret(takeover_command(args, "handover"), args.secret),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
            )
            if args.adopt_existing
            else None
        )
        # The runbook's BGPPeer webhook entry must go before the chart's configuration is applied over
        # the shared one: left in, it would stay there, and shift the entries Pulumi records.
        webhook_entry = (
            command.local.Command(
                resource_names.runbook_webhook_entry(name),
                create=kept_secret(takeover_command(args, "webhook-entry"), args.secret),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if args.adopt_existing
            else None
        )
        self.chart = k8s.helm.v4.Chart(
            resource_names.chart(name),
            chart_args(args.chart, self.namespace),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[namespace, *([webhook_entry] if webhook_entry is not None else [])],
                transforms=[chart_children_transform(args.stack_mark)],
            ),
        )
        # Helm's release records go only once the chart owns every object, so a failed `up` leaves the
        # release as Helm knew it.
        forget_release = (
            command.local.Command(
                resource_names.helm_release_record(name),
                create=kept_secret(
                    takeover_command(args, "forget-helm-release", "--release", resource_names.RELEASE_NAME),
                    args.secret,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.chart]),
            )
            if args.adopt_existing
            else None
        )
        self.webhook_gate = command.local.Command(
            f"{name}-webhook-gate",
            create=kept_secret(webhook_gate_command(args), args.secret),
            # Probe again whenever the release changes (an upgrade restarts the controller) or the
            # cluster is rebuilt, never on a plain `up`.
            triggers=[
                self.cluster_identity,
                args.chart.path or args.chart.version,
                json.dumps(chart_values(args.chart), sort_keys=True),
            ],
            # After a takeover, only the chart's controller may answer: the runbook's and the chart's
            # write different CA bundles into the one webhook configuration.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.chart, *(step for step in (handover, forget_release) if step is not None)],
            ),
        )
        self.register_outputs({"namespace": self.namespace, "webhookGate": self.webhook_gate.stdout})
