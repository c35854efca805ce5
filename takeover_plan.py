"""Given what a cluster runs (metallb_survey) and what a stack declares, whether `up` may go on, and how.

The program runs this before it declares any resource; `tools.survey` runs it outside a Pulumi run. The
answer is a `TakeoverPlan`: one line that says what runs there, what the stack takes over, what it
removes, what it leaves alone, warnings, and the reasons to refuse. The rules:

- A stack refuses, by default, a cluster that runs a MetalLB it does not manage, or that holds objects it
  would have to create (they exist: pulumi-kubernetes' create would fail with AlreadyExists halfway
  through `up`). `adoptExisting: true` lets it take them over.
- It always refuses what a takeover cannot make safe: an object another stack manages; a MetalLB in
  another namespace or under other names (a second MetalLB would answer ARP for the same addresses); a
  Helm release that renames its objects, is mid-operation, or cannot be read; a chart version other
  than the running one (a takeover keeps the version; upgrade in a later `up`).
- The rename guard: an object this stack manages carries the URN of its resource. If the program now
  declares it under another URN (a new name, parent or type), Pulumi would create the new resource
  (which, with upsert on, takes the object over) and then delete the old one (deleting the object). The
  guard refuses that before it happens.
- Pools and advertisements in the cluster that the stack file does not declare are reported, never
  touched: MetalLB keeps handing out their addresses.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

import resource_names
from kube_client import Kubectl, KubectlError
from metallb_survey import (
    CHART_CONTROLLER,
    CHART_SPEAKER,
    NAMESPACE,
    SHARED_OBJECTS,
    WEBHOOK_CONFIGURATION,
    ClusterSurvey,
    FoundObject,
    HelmRelease,
    ObjectRef,
    Workload,
    survey_cluster,
)
from stack_config import StackConfig

README_SECTION = "README: Taking over a cluster set up by hand"


class TakeoverRefused(pulumi.RunError):
    """The cluster cannot be taken as it is; nothing was changed. RunError: Pulumi prints no traceback."""


@dataclass(frozen=True)
class StackIntent:
    """What a stack is about to declare, as far as a takeover is concerned."""

    stack: str
    stack_file: str
    # The value of metallb_survey.MARK_STACK on everything this stack manages.
    mark: str
    adopt_existing: bool
    # The chart version the stack installs; None when a local chart's version cannot be read.
    chart_version: str | None
    # Where that version comes from, as a user would look it up.
    chart_setting: str
    pools: tuple[str, ...]
    advertisements: tuple[str, ...]
    # The URN of the resource each object the program declares is managed under.
    resource_names: Mapping[ObjectRef, str]
    # Each pool's addresses as the stack file writes them.
    pool_addresses: Mapping[str, tuple[str, ...]]
    # The chart values the stack sets, as dotted paths (chart 0.14.3 defaults speaker.frr.enabled to true).
    chart_values: Mapping[str, Any]


def local_chart_version(path: str) -> str | None:
    """The `version` in a local chart's Chart.yaml, from a directory or a .tgz archive."""
    chart_path = Path(path)
    try:
        if chart_path.is_dir():
            text = (chart_path / "Chart.yaml").read_text()
        else:
            with tarfile.open(chart_path) as archive:
                member = next(
                    m
                    for m in archive.getmembers()
                    if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")
                )
                extracted = archive.extractfile(member)
                if extracted is None:
                    return None
                text = extracted.read().decode()
        document = yaml.safe_load(text)
    except (OSError, StopIteration, tarfile.TarError, yaml.YAMLError, UnicodeDecodeError):
        return None
    version = document.get("version") if isinstance(document, dict) else None
    return str(version) if version is not None else None


def stack_intent(config: StackConfig, project: str) -> StackIntent:
    mark = f"{project}/{config.stack}"
    chart_name = resource_names.chart(resource_names.METALLB)
    chart_types = [resource_names.METALLB_TYPE, resource_names.CHART_TYPE]
    pool_types = [resource_names.ADDRESS_POOLS_TYPE]

    def chart_child(ref: ObjectRef) -> str:
        child_types = [*chart_types, resource_names.KIND_TYPES[ref.kind]]
        return resource_names.urn(mark, child_types, resource_names.chart_child(chart_name, ref))

    namespace = SHARED_OBJECTS[0].ref
    names = {
        namespace: resource_names.urn(
            mark,
            [resource_names.METALLB_TYPE, resource_names.KIND_TYPES["Namespace"]],
            resource_names.namespace(resource_names.METALLB),
        ),
        **{known.ref: chart_child(known.ref) for known in SHARED_OBJECTS[1:]},
        CHART_CONTROLLER: chart_child(CHART_CONTROLLER),
        CHART_SPEAKER: chart_child(CHART_SPEAKER),
        **{
            ObjectRef("IPAddressPool", NAMESPACE, pool.name): resource_names.urn(
                mark,
                [*pool_types, resource_names.KIND_TYPES["IPAddressPool"]],
                resource_names.pool(resource_names.ADDRESS_POOLS, pool.name),
            )
            for pool in config.pools
        },
        **{
            ObjectRef("L2Advertisement", NAMESPACE, ad.name): resource_names.urn(
                mark,
                [*pool_types, resource_names.KIND_TYPES["L2Advertisement"]],
                resource_names.advertisement(resource_names.ADDRESS_POOLS, ad.name),
            )
            for ad in config.advertisements
        },
    }
    if config.chart.path is not None:
        version = local_chart_version(config.chart.path)
        setting = f"metallb.chartPath {config.chart.path!r} (chart version {version or 'unreadable'})"
    else:
        version = config.chart.version
        setting = f'metallb.chartVersion "{version}"'
    return StackIntent(
        stack=config.stack,
        stack_file=config.stack_file,
        mark=mark,
        adopt_existing=config.adopt_existing,
        chart_version=version,
        chart_setting=setting,
        pools=tuple(pool.name for pool in config.pools),
        pool_addresses={pool.name: tuple(block.text for block in pool.addresses) for pool in config.pools},
        chart_values={"speaker.frr.enabled": config.chart.frr_enabled},
        advertisements=tuple(ad.name for ad in config.advertisements),
        resource_names=names,
    )


@dataclass
class TakeoverPlan:
    context: str
    summary: str
    take_over: list[ObjectRef] = field(default_factory=list)
    remove: list[ObjectRef] = field(default_factory=list)
    # Entries of the shared webhook configuration that only the runbook's install has.
    remove_webhooks: list[str] = field(default_factory=list)
    # What the runbook's workloads own, which goes with them (the memberlist Secret).
    remove_dependents: list[ObjectRef] = field(default_factory=list)
    forget: list[ObjectRef] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    def removals(self) -> str:
        entries = [f"webhook {name} of {WEBHOOK_CONFIGURATION}" for name in self.remove_webhooks]
        dependents = [f"{ref} (with its owner)" for ref in self.remove_dependents]
        return ", ".join([*(str(ref) for ref in self.remove), *entries, *dependents])

    def lines(self) -> list[str]:
        """The report, one finding per line, as `pulumi preview` and `tools.survey` print it."""
        lines = [f"cluster {self.context}: {self.summary}"]
        if self.take_over:
            lines.append("take over (the same name in the chart or the stack file): " + _join(self.take_over))
        if self.remove or self.remove_webhooks:
            lines.append("remove (the runbook's native-manifest objects): " + self.removals())
        if self.forget:
            lines.append(
                "forget (Helm's release records, so helm no longer owns the objects): " + _join(self.forget)
            )
        lines += [f"keep: {line}" for line in self.keep]
        lines += [f"note: {line}" for line in self.notes]
        lines += [f"warning: {line}" for line in self.warnings]
        lines += [f"refused: {line}" for line in self.refusals]
        return lines


def _join(refs: Sequence[ObjectRef]) -> str:
    return ", ".join(str(ref) for ref in refs)


def _release_of(workload: Workload, releases: Sequence[HelmRelease]) -> HelmRelease | None:
    name = workload.found.annotations.get("meta.helm.sh/release-name")
    namespace = workload.found.annotations.get("meta.helm.sh/release-namespace", workload.found.ref.namespace)
    return next((r for r in releases if (r.name, r.namespace) == (name, namespace)), None)


def _origin(
    workload: Workload, intent: StackIntent, releases: Sequence[HelmRelease], native: set[ObjectRef]
) -> str:
    found = workload.found
    if found.stack == intent.mark:
        return "this stack"
    if found.stack:
        return f"stack {found.stack}"
    if found.ref in native:
        return "the runbook's native manifest"
    release = _release_of(workload, releases)
    if release is not None:
        return f"Helm release {release.namespace}/{release.name}"
    if found.ref in (CHART_CONTROLLER, CHART_SPEAKER):
        return "the chart, with no Helm release record and no stack's mark"
    return "an install this program does not know"


def _is_metallb_release(release: HelmRelease, workloads: Sequence[Workload]) -> bool:
    return release.chart == "metallb" or any(_release_of(w, [release]) is release for w in workloads)


# What chart 0.14.3 does with a value nobody set, for the values the stack sets, and the stack's key.
CHART_DEFAULTS = {"speaker.frr.enabled": True}
STACK_KEYS = {"speaker.frr.enabled": "metallb.frrEnabled"}
NAME_OVERRIDES = ("fullnameOverride", "nameOverride")


def _values_refusal(release: HelmRelease, intent: StackIntent) -> str | None:
    """A release given values other than the stack's keeps what they added after a takeover.

    Server-side apply never removes fields another manager (here Helm) owns: FRR containers of a release
    with FRR on, say, would stay in a DaemonSet the stack declares without them.
    """
    # Name overrides are refused on their own (see _helm_refusals); no upgrade advice fits them.
    given = {**CHART_DEFAULTS, **{k: v for k, v in release.values.items() if k not in NAME_OVERRIDES}}
    wanted = {**CHART_DEFAULTS, **intent.chart_values}
    differing = sorted(path for path in given.keys() | wanted.keys() if given.get(path) != wanted.get(path))
    if not differing:
        return None
    shown = ", ".join(
        f"{path}={json.dumps(given.get(path))} (the stack: {json.dumps(wanted.get(path))})"
        for path in differing
    )
    settings = " ".join(f"--set {path}={json.dumps(value)}" for path, value in intent.chart_values.items())
    return (
        f"Helm release {release.namespace}/{release.name} runs with values this stack does not set: {shown}. "
        "A takeover would leave what they added (containers, objects) in place, owned by nobody. Bring the "
        f"release to the stack's values first (`helm upgrade {release.name} metallb/metallb -n "
        f"{release.namespace} --version {release.chart_version} --reset-values {settings}`)"
        + (
            f", or set {', '.join(STACK_KEYS[path] for path in differing)} in {intent.stack_file} to match"
            if all(path in STACK_KEYS for path in differing)
            else ""
        )
    )


def _helm_refusals(release: HelmRelease) -> list[str]:
    where = f"Helm release {release.namespace}/{release.name}"
    if release.unreadable:
        return [f"{where}: {release.unreadable}; what it holds cannot be checked"]
    reasons = []
    if release.namespace != NAMESPACE:
        reasons.append(
            f"{where} installs MetalLB into namespace {release.namespace}, this program into {NAMESPACE}: "
            "taking it over would run a second MetalLB. Remove the release first (mind that `helm uninstall` "
            "of the 0.14 chart deletes its CRDs and with them every pool)"
        )
    if release.name != resource_names.RELEASE_NAME:
        reasons.append(
            f"{where}: its objects are named {release.name}-*, this program's "
            f"{resource_names.RELEASE_NAME}-*; taking it over would run a second MetalLB beside it"
        )
    if release.name_overrides:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(release.name_overrides.items()))
        reasons.append(f"{where} renames the chart's objects ({shown}); this program cannot follow that")
    if release.status != "deployed":
        reasons.append(
            f"{where} is {release.status!r} (revision {release.revision}), not 'deployed': "
            "Helm is mid-operation "
            "or failed; finish or roll it back with helm first"
        )
    if release.chart not in (None, "metallb"):
        reasons.append(f"{where} is of chart {release.chart!r}, not metallb")
    return reasons


def plan_takeover(intent: StackIntent, survey: ClusterSurvey) -> TakeoverPlan:
    plan = TakeoverPlan(context=survey.context, summary="")
    ours = intent.mark
    releases = [r for r in survey.helm_releases if _is_metallb_release(r, survey.workloads)]
    found_all: list[FoundObject] = [
        *survey.shared,
        *(w.found for w in survey.workloads),
        *survey.pools,
        *survey.advertisements,
        *survey.chart_objects,
    ]

    # Who runs what.
    origins: dict[str, list[Workload]] = {}
    native_refs = {found.ref for found in survey.native}
    for workload in survey.workloads:
        origin = _origin(workload, intent, releases, native_refs)
        origins.setdefault(origin, []).append(workload)
    if not origins:
        plan.summary = "no MetalLB runs"
        if survey.shared or survey.pools:
            plan.summary += " (but MetalLB objects are left from an earlier install)"
    else:
        parts = []
        for origin, workloads in origins.items():
            versions = sorted({w.version or "unknown version" for w in workloads})
            parts.append(
                f"MetalLB {', '.join(versions)} from {origin} ({_join([w.found.ref for w in workloads])})"
            )
        plan.summary = "; ".join(parts)

    # What can never be made safe.
    for found in found_all:
        if found.stack and found.stack != ours:
            plan.refusals.append(
                f"{found.ref} is managed by stack {found.stack}, not {ours}: "
                "one cluster's MetalLB belongs to one "
                "stack; run that stack, or destroy it first"
            )
        expected = intent.resource_names.get(found.ref)
        if found.stack == ours and found.resource and expected and found.resource != expected:
            plan.refusals.append(
                f"{found.ref} is managed by resource {found.resource}, and the program now declares it as "
                f"{expected}: a rename (or a move to another parent) without an alias. `up` would create "
                "the new resource (taking the object over) and then delete the old one (deleting the "
                "object). Add an alias for the old URN, or undo the change"
            )
    for origin, workloads in origins.items():
        if origin == "an install this program does not know":
            for workload in workloads:
                plan.refusals.append(
                    f"MetalLB runs as {workload.found.ref} ({workload.image}), "
                    "neither the runbook's install nor "
                    f"the chart's in {NAMESPACE}: a second MetalLB beside it would answer ARP for the same "
                    "addresses. Remove it first"
                )
    for release in releases:
        plan.refusals += _helm_refusals(release)
        if not release.unreadable and (values := _values_refusal(release, intent)) is not None:
            plan.refusals.append(values)
    if len(releases) > 1:
        plan.refusals.append(
            "more than one Helm release holds MetalLB ("
            + ", ".join(f"{r.namespace}/{r.name}" for r in releases)
            + ")"
        )

    # What this stack would create although it exists, what the runbook left that must go, and Helm's records.
    declared_pools = {ObjectRef("IPAddressPool", NAMESPACE, name) for name in intent.pools}
    declared_ads = {ObjectRef("L2Advertisement", NAMESPACE, name) for name in intent.advertisements}
    chart_workloads = [w for w in survey.workloads if w.found.ref in (CHART_CONTROLLER, CHART_SPEAKER)]
    # The chart's other objects belong to the install being taken over, if there is one; beside this
    # stack's own install they are left from an earlier one, and the chart at the stack's values does
    # not declare them.
    foreign_chart = bool(releases) or any(w.found.stack != ours for w in chart_workloads)
    unmarked_chart_objects = [found for found in survey.chart_objects if found.stack != ours]
    declared_config = [
        found
        for found in (*survey.pools, *survey.advertisements)
        if found.ref in declared_pools | declared_ads
    ]
    candidates = [
        *survey.shared,
        *(w.found for w in chart_workloads),
        *(unmarked_chart_objects if foreign_chart else []),
        *declared_config,
    ]
    plan.take_over = sorted(found.ref for found in candidates if found.stack != ours)
    if not foreign_chart:
        for found in unmarked_chart_objects:
            plan.warnings.append(
                f"{found.ref} is labelled as the MetalLB chart's, but this stack does not declare it: left "
                "from an earlier install, and left alone. Delete it with kubectl if nothing uses it"
            )
    for found in survey.pools:
        wanted = intent.pool_addresses.get(found.ref.name)
        if found.stack != ours and wanted is not None and found.detail != ", ".join(wanted):
            plan.warnings.append(
                f"{found.ref} has {found.detail} in the cluster, {intent.stack_file} says "
                f"{', '.join(wanted)}: the takeover changes it to the stack file's"
            )
    plan.remove = [found.ref for found in survey.native]
    plan.remove_webhooks = list(survey.native_webhook_entries)
    plan.remove_dependents = [found.ref for found in survey.native_dependents]
    plan.forget = [ref for release in releases for ref in release.records]
    foreign_workloads = [w for w in survey.workloads if w.found.stack != ours]

    # A takeover keeps the running version.
    running = sorted({w.version for w in foreign_workloads if w.version})
    if running and intent.chart_version and running != [intent.chart_version]:
        plan.notes.append(
            f"the cluster runs MetalLB {', '.join(running)}; "
            f"{intent.stack_file} installs {intent.chart_setting}"
        )
    if foreign_workloads and intent.adopt_existing:
        if intent.chart_version is None:
            plan.refusals.append(
                f"{intent.stack_file}: {intent.chart_setting}: "
                "the chart's version cannot be read, so it cannot be "
                f"checked against the running MetalLB ({', '.join(running) or 'unknown version'})"
            )
        elif running and running != [intent.chart_version]:
            plan.refusals.append(
                f"{intent.stack_file}: {intent.chart_setting} differs from the MetalLB the cluster runs "
                f"({', '.join(running)}). A takeover keeps the running version: set metallb.chartVersion to "
                f'"{running[0]}" for the takeover, then upgrade in a later `up`'
            )
    own_versions = sorted({w.version for w in survey.workloads if w.found.stack == ours and w.version})
    if own_versions and intent.chart_version and own_versions != [intent.chart_version]:
        plan.notes.append(
            f"this `up` changes MetalLB from {', '.join(own_versions)} to {intent.chart_version}"
        )

    # Without the opt-in, nothing that exists is taken.
    if not intent.adopt_existing and (plan.take_over or plan.remove or plan.forget or foreign_workloads):
        found_lines = [
            f"MetalLB from {origin}: {_join([w.found.ref for w in workloads])}"
            for origin, workloads in origins.items()
            if origin != "this stack"
        ]
        if plan.take_over:
            found_lines.append(f"objects this stack would create, which exist: {_join(plan.take_over)}")
        if plan.remove or plan.remove_webhooks:
            found_lines.append(f"the runbook's objects a takeover removes: {plan.removals()}")
        if plan.forget:
            found_lines.append(f"Helm's release records a takeover removes: {_join(plan.forget)}")
        plan.refusals.append(
            "the cluster holds a MetalLB this stack does not manage, and `up` would fail halfway on objects "
            "that exist:\n" + "\n".join(f"      {line}" for line in found_lines) + "\n"
            "    To take them over, set adoptExisting: "
            f"`pulumi config set --stack {intent.stack} adoptExisting true` "
            f"(macula-lan:adoptExisting in {intent.stack_file}); {README_SECTION}"
        )

    # Never touched: what else lives in the namespace, and MetalLB configuration the stack does not declare.
    for ref in survey.others:
        plan.keep.append(f"{ref} (not MetalLB's)")
    if survey.native:
        plan.keep.append("every custom resource (pools, advertisements, ...) and the namespace itself")
    for found in survey.pools:
        if found.ref.name not in intent.pools:
            plan.warnings.append(
                f"{found.ref} ({found.detail}) is not declared in {intent.stack_file}: "
                "MetalLB keeps handing out its "
                "addresses, outside the fleet's plan. Declare it under pools, or delete it with kubectl"
            )
    for found in survey.advertisements:
        if found.ref.name not in intent.advertisements:
            plan.warnings.append(
                f"{found.ref} ({found.detail}) is not declared in {intent.stack_file}: it keeps announcing. "
                + (
                    "Declare it under advertisements, or delete it with kubectl"
                    if found.ref.kind == "L2Advertisement"
                    else "This program declares L2 advertisements only; delete it with kubectl if unwanted"
                )
            )
    if survey.native and any(w.found.stack == ours for w in survey.workloads):
        urn = (
            f"urn:pulumi:{intent.stack}::{intent.mark.split('/')[0]}::macula:lan:MetalLB$command:local:Command::"
            f"{resource_names.runbook_handover(resource_names.METALLB)}"
        )
        plan.warnings.append(
            "the runbook's MetalLB runs beside this stack's. If the last takeover stopped midway, this `up` "
            "finishes it. If it completed, run "
            f"`pulumi up --stack {intent.stack} --replace '{urn}'` to remove "
            "it again"
        )
    return plan


def refuse_if_needed(intent: StackIntent, plan: TakeoverPlan) -> None:
    if plan.refused:
        body = "\n".join(f"  - {line}" for line in plan.refusals)
        raise TakeoverRefused(
            f"Stack {intent.stack!r} ({intent.stack_file}) will not run on cluster {plan.context} as it is; "
            f"nothing was changed:\n{body}"
        )


def survey_and_plan(config: StackConfig, project: str) -> tuple[StackIntent, TakeoverPlan]:
    """Read the stack's cluster and plan; a cluster that cannot be read is refused, not guessed at."""
    intent = stack_intent(config, project)
    try:
        survey = survey_cluster(Kubectl(config.kube_context, config.kubeconfig))
    except KubectlError as error:
        raise TakeoverRefused(
            f"Stack {config.stack!r} ({config.stack_file}) cannot tell what MetalLB its cluster (context "
            f"{config.kube_context}) runs, so it changes nothing. kubectl said: {error}"
        ) from None
    return intent, plan_takeover(intent, survey)


def announce(plan: TakeoverPlan) -> None:
    """Print the plan where `pulumi preview` and `up` show diagnostics: warnings as warnings."""
    for line in plan.lines():
        if line.startswith("warning:"):
            pulumi.log.warn(line)
        elif not line.startswith("refused:"):  # refuse_if_needed raises with those
            pulumi.log.info(line)
