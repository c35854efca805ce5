"""What `pulumi up` would find on a stack's cluster, and whether it would go ahead, without changing a thing.

    python -m tools.survey --stack kind-dev          (make survey STACK=kind-dev)

It reads the cluster with `kubectl get` only, exactly as the program does before it declares anything
(metallb_survey, takeover_plan), and prints the same report `pulumi preview` shows: what MetalLB runs
there and how it was installed, what the stack would take over, remove and leave alone, pools and
advertisements the stack file does not declare, and why `up` would refuse, if it would. Run it before
the first `pulumi up` of a stack on a cluster that already has MetalLB.

Exit status: 0 `up` would go ahead, 1 `up` would refuse, 2 the check could not be made (no such stack, an
invalid stack file, a cluster kubectl cannot read).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from kube_client import DEFAULT_KUBECTL_TIMEOUT, Kubectl, KubectlError
from metallb_survey import survey_cluster
from stack_config import ConfigError, load_stack_file_config
from takeover_plan import plan_takeover, stack_intent
from tools.arguments import add_kubectl_timeout

PROJECT_DIR = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.survey",
        description="Show what MetalLB a stack's cluster runs and what `pulumi up` would do with it. "
        "Read-only.",
        epilog="Exit status: 0 up would go ahead, 1 up would refuse, 2 the check could not be made.",
    )
    parser.add_argument("--stack", required=True, help="the stack, as in Pulumi.<stack>.yaml")
    add_kubectl_timeout(parser, DEFAULT_KUBECTL_TIMEOUT)
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        config = load_stack_file_config(args.project_dir, args.stack)
    except ConfigError as error:
        print(f"survey: {error}", file=sys.stderr)
        return 2
    project = yaml.safe_load((args.project_dir / "Pulumi.yaml").read_text())["name"]
    intent = stack_intent(config, project)
    print(f"survey stack {config.stack}: context {config.kube_context}, read-only", flush=True)
    try:
        found = survey_cluster(Kubectl(config.kube_context, config.kubeconfig, args.kubectl_timeout))
    except KubectlError as error:
        print(f"survey: cannot read the cluster (context {config.kube_context}): {error}", file=sys.stderr)
        return 2
    plan = plan_takeover(intent, found)
    for line in plan.lines():
        print(line)
    if plan.refused:
        print(f"`pulumi up --stack {config.stack}` would refuse this cluster and change nothing")
        return 1
    if plan.take_over or plan.remove or plan.forget:
        print(f"`pulumi up --stack {config.stack}` would take this MetalLB over as above (adoptExisting)")
    else:
        print(f"`pulumi up --stack {config.stack}` would go ahead: nothing to take over")
    return 0


if __name__ == "__main__":
    sys.exit(main())
