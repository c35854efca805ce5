"""Drift check: does each stack's cluster still match what the program declares?

    python -m tools.drift [STACK ...] [--exclude STACK] [--summary FILE] [--timeout SECONDS]
    python -m tools.drift --list-stacks [STACK ...] [--exclude STACK]

For each stack (default: every `Pulumi.<stack>.yaml` of the project but those `--exclude` names) it runs

    pulumi preview --stack STACK --refresh --expect-no-changes --json --non-interactive --color never

The refresh reads every resource back from the cluster; the preview then compares what it read with what
the program declares. Nothing is written: neither the state nor the cluster changes. It prints one row per
stack, `in sync`, `drifted` with every resource that differs (operation, type, name and the changed
fields), or `error` with the reason the check could not be made.

Exit status: 0 when every stack is in sync; 1 when at least one drifted and every check ran; 2 when at
least one check could not be made (an error hides whether that stack drifted, so it outranks drift): a
wrong command line, a pulumi that cannot run, times out (its whole process group is stopped) or prints
output that is not UTF-8 or not a preview digest, a summary that cannot be written, any unforeseen
failure; 3 when no stack drifted but at least one is unhealthy: the refresh found a resource not ready
(pulumi-kubernetes reports it as an initialization error, and the preview plans an empty update to await
it again), which is a broken stack, not drift. `--summary FILE` appends the same result as Markdown, for
`$GITHUB_STEP_SUMMARY` or an issue body. `--list-stacks` prints the stacks as a JSON list (the drift
workflow's job matrix) and runs nothing.

Running the CLI (`run_pulumi_preview`) is kept thin; reading its output (`judge`) is a pure function of
(exit code, stdout, stderr), tested against recorded output in tests/tools/recorded/. The module needs
only the standard library, so a CI job can list stacks without installing the project.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from project_files import stack_names
from tools.arguments import seconds
from tools.process_group import UndecodableOutputError, decoded, run_in_own_group

PROJECT_DIR = Path(__file__).resolve().parent.parent

EXIT_IN_SYNC = 0
EXIT_DRIFTED = 1
EXIT_ERROR = 2
EXIT_UNHEALTHY = 3

DEFAULT_TIMEOUT_SECONDS = 900.0

# `pulumi preview --expect-no-changes` exits 7 when changes were proposed, since CLI 3.227.0
# (ExitNoChanges in pkg/cmd/pulumi/cmd/exit_codes.go). Older CLIs exit 255 for that and for every
# other failure, so the message on stderr is the fallback: "no changes were expected [for preview] but
# changes were proposed" (pkg/backend/backenderr/backenderr.go); some old commands said "... occurred".
PULUMI_EXIT_CHANGES_PROPOSED = 7
_CHANGES_PROPOSED = re.compile(
    r"no changes were expected(?: for \w+)? but changes (?:were proposed|occurred)"
)

# Steps that change nothing. `same`, `read`, `read-discard` and `read-replacement` are the operations
# engine.HasChanges does not count (pkg/engine/update.go). `refresh` is the step `--refresh` takes on each
# resource before the program runs; the engine does not count it either. What a refresh finds shows up as
# the program's own step (update, create), or, from `pulumi refresh --preview-only`, as the refresh step
# rewritten to update or delete (ShowPreviewDigest, pkg/backend/display/json.go).
_NO_CHANGE_OPS = frozenset({"same", "read", "read-discard", "read-replacement", "refresh"})

_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Outcome(enum.StrEnum):
    IN_SYNC = "in sync"
    DRIFTED = "drifted"
    # The refresh found resources that are not ready: nobody changed anything (see judge).
    UNHEALTHY = "unhealthy"
    ERROR = "error"


@dataclass(frozen=True)
class ResourceChange:
    """One resource the preview would change, as named by its step in the preview's JSON."""

    op: str
    urn: str
    # The changed property paths: detailedDiff's keys when the provider gave them, else diffReasons,
    # else replaceReasons (create and delete steps have none).
    keys: tuple[str, ...] = ()
    # The resource's initialization errors (apitype.ResourceV3.initErrors of its old or new state): what
    # pulumi-kubernetes reports when a refresh finds the object not ready.
    init_errors: tuple[str, ...] = ()

    @property
    def unhealthy_only(self) -> bool:
        """An update that only awaits the resource again: the engine plans one, with no diff, for a
        resource with initialization errors (step_generator.go, "If resource was unchanged, but there
        were initialization errors, generate an empty update step")."""
        return self.op == "update" and not self.keys and bool(self.init_errors)

    @property
    def type(self) -> str:
        """The resource's own type, without its parents' (`kubernetes:core/v1:Namespace`)."""
        qualified_type = self._urn_parts()[2]
        return qualified_type.rsplit("$", 1)[-1]

    @property
    def name(self) -> str:
        return self._urn_parts()[3]

    def _urn_parts(self) -> list[str]:
        # urn:pulumi:STACK::PROJECT::PARENT-TYPE$...$TYPE::NAME; names may hold single colons (the
        # Helm chart's children are `metallb-chart:metallb-system/metallb-speaker`), never `::`.
        parts = self.urn.split("::", 3)
        return parts if len(parts) == 4 else ["", "", self.urn, self.urn]

    def describe(self) -> str:
        """What the step says about the resource, in the words of a refresh-then-preview."""
        fields = ", ".join(self.keys)
        if self.unhealthy_only:
            return f"not ready: {self.init_errors[0]}"
        if self.op == "create":
            # The refresh found the object gone, so the program's declaration would create it again.
            return "missing from the cluster"
        if self.op == "delete":
            return "in the stack's state but no longer declared"
        if self.op == "replace":
            return f"would be replaced; differs in {fields}" if fields else "would be replaced"
        if self.op == "update":
            return f"differs in {fields}" if fields else "differs"
        return f"{self.op} {fields}".strip()


@dataclass(frozen=True)
class Verdict:
    stack: str
    outcome: Outcome
    changes: tuple[ResourceChange, ...] = ()
    # Why the check failed (error), or what is known about drift the output did not itemise.
    reason: str = ""
    unchanged: int | None = None
    exit_code: int | None = None


# --- Reading Pulumi's output (pure) -------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text without colour escapes (old CLIs leave them in diagnostics even with --color never)."""
    return _ANSI_ESCAPE.sub("", text).strip()


def parse_digest(stdout: str) -> tuple[dict[str, Any] | None, str]:
    """The PreviewDigest `pulumi preview --json` prints (pkg/display/json.go), or None and why not.

    The digest is one indented JSON object. Anything a plugin printed on stdout before it is skipped.
    """
    text = stdout.strip()
    if not text:
        return None, "pulumi printed nothing on stdout"
    candidates = [text]
    # MarshalIndent puts the opening brace alone on the first line of the digest.
    lines = text.splitlines()
    candidates += ["\n".join(lines[index:]) for index, line in enumerate(lines) if index and line == "{"]
    problem = ""
    for candidate in candidates:
        try:
            document = json.loads(candidate)
        except ValueError as error:
            problem = problem or f"stdout is not JSON ({error})"
            continue
        if isinstance(document, dict):
            return document, ""
        problem = f"stdout is JSON but not an object: {candidate[:60]!r}"
    return None, problem


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def resource_changes(digest: Mapping[str, Any]) -> tuple[ResourceChange, ...]:
    """The steps that would change a resource, one per URN, in the order the preview listed them."""
    changes: dict[str, ResourceChange] = {}
    steps = digest.get("steps")
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        op, urn = step.get("op"), step.get("urn")
        if not isinstance(op, str) or not isinstance(urn, str) or op in _NO_CHANGE_OPS or urn in changes:
            continue
        detailed = step.get("detailedDiff")
        keys = tuple(sorted(detailed)) if isinstance(detailed, dict) and detailed else ()
        keys = keys or _strings(step.get("diffReasons")) or _strings(step.get("replaceReasons"))
        errors = tuple(
            error
            for state in (step.get("newState"), step.get("oldState"))
            if isinstance(state, dict)
            for error in _strings(state.get("initErrors"))
        )
        changes[urn] = ResourceChange(op=op, urn=urn, keys=keys, init_errors=tuple(dict.fromkeys(errors)))
    return tuple(changes.values())


def _summary_counts(digest: Mapping[str, Any]) -> dict[str, int]:
    summary = digest.get("changeSummary")
    if not isinstance(summary, dict):
        return {}
    return {op: count for op, count in summary.items() if isinstance(count, int)}


def _changed_in_summary(counts: Mapping[str, int]) -> int:
    return sum(count for op, count in counts.items() if op not in _NO_CHANGE_OPS)


def _diagnostics(digest: Mapping[str, Any] | None, severity: str) -> list[str]:
    diagnostics = digest.get("diagnostics") if digest else None
    messages = []
    for diagnostic in diagnostics if isinstance(diagnostics, list) else []:
        if isinstance(diagnostic, dict) and diagnostic.get("severity") == severity:
            message = diagnostic.get("message")
            if isinstance(message, str) and _clean(message):
                messages.append(_clean(message))
    return messages


def _without_error_prefix(message: str) -> str:
    # Pulumi prefixes errors with "error: "; old CLIs prefixed some twice ("error: error: ...").
    while message.startswith("error: "):
        message = message[len("error: ") :]
    return message


def _error_reason(exit_code: int, digest: Mapping[str, Any] | None, stderr: str) -> str:
    """The lines that say why pulumi failed: its errors, then the warnings that often explain them."""
    stderr_lines = [_clean(line) for line in stderr.splitlines() if _clean(line)]
    errors = [line for line in stderr_lines if line.startswith("error:")]
    lines = [_without_error_prefix(message) for message in [*_diagnostics(digest, "error"), *errors]]
    lines += _diagnostics(digest, "warning")
    if not lines and stderr_lines:
        lines = stderr_lines[-1:]
    unique = list(dict.fromkeys(lines))
    return "\n".join(unique) or f"pulumi exited with code {exit_code} and gave no reason"


def judge(stack: str, exit_code: int, stdout: str, stderr: str) -> Verdict:
    """What one `pulumi preview --refresh --expect-no-changes --json` run says about the stack."""
    digest, parse_problem = parse_digest(stdout)
    changes = resource_changes(digest) if digest is not None else ()
    counts = _summary_counts(digest) if digest is not None else {}
    changes_proposed = exit_code == PULUMI_EXIT_CHANGES_PROPOSED or (
        exit_code != 0 and _CHANGES_PROPOSED.search(_clean(stderr)) is not None
    )
    if exit_code == 0 and digest is None:
        # Without the digest nothing confirms the exit code came from the preview we asked for.
        return Verdict(
            stack,
            Outcome.ERROR,
            reason=f"pulumi exited 0 but its JSON output could not be read: {parse_problem}",
            exit_code=exit_code,
        )
    if exit_code == 0 and digest is not None and not isinstance(digest.get("changeSummary"), dict):
        # A preview digest always has one (PreviewDigest in pkg/display/json.go); `{}` says nothing.
        return Verdict(
            stack,
            Outcome.ERROR,
            reason="pulumi exited 0 but its JSON has no changeSummary, so it says nothing about the stack",
            exit_code=exit_code,
        )
    if changes and all(change.unhealthy_only for change in changes):
        # A refresh that finds a Deployment or Service not ready gives it initialization errors, and the
        # preview plans an empty update to await it again. Nobody changed anything: not drift.
        return Verdict(stack, Outcome.UNHEALTHY, changes, exit_code=exit_code)
    if changes_proposed or (exit_code == 0 and (changes or _changed_in_summary(counts))):
        reason = ""
        if digest is None:
            reason = f"pulumi proposed changes, but its JSON output could not be read: {parse_problem}"
        elif not changes:
            counted = f" ({_format_counts(counts)})" if _changed_in_summary(counts) else ""
            reason = f"pulumi proposed changes{counted} but listed no resource step"
        return Verdict(stack, Outcome.DRIFTED, changes, reason=reason, exit_code=exit_code)
    if exit_code == 0:
        return Verdict(stack, Outcome.IN_SYNC, unchanged=counts.get("same"), exit_code=exit_code)
    return Verdict(stack, Outcome.ERROR, reason=_error_reason(exit_code, digest, stderr), exit_code=exit_code)


def _format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{op} {count}" for op, count in sorted(counts.items()) if op not in _NO_CHANGE_OPS)


def exit_status(verdicts: Iterable[Verdict]) -> int:
    """2 when a check could not be made (it hides whether that stack drifted), else 1 when a stack drifted,
    else 3 when a stack is unhealthy but none drifted, else 0."""
    outcomes = {verdict.outcome for verdict in verdicts}
    if Outcome.ERROR in outcomes:
        return EXIT_ERROR
    if Outcome.DRIFTED in outcomes:
        return EXIT_DRIFTED
    if Outcome.UNHEALTHY in outcomes:
        return EXIT_UNHEALTHY
    return EXIT_IN_SYNC


# --- Showing the verdicts (pure) ----------------------------------------------------------------------


def _result_label(verdict: Verdict) -> str:
    if verdict.outcome is Outcome.ERROR and verdict.exit_code not in (None, 0):
        return f"error (exit {verdict.exit_code})"
    if verdict.outcome is Outcome.DRIFTED:
        return f"drifted ({len(verdict.changes)})" if verdict.changes else "drifted"
    if verdict.outcome is Outcome.UNHEALTHY:
        return f"unhealthy ({len(verdict.changes)})"
    return verdict.outcome.value


def _detail_lines(verdict: Verdict) -> list[str]:
    if verdict.outcome is Outcome.IN_SYNC:
        return ["no changes" if verdict.unchanged is None else f"{verdict.unchanged} resources unchanged"]
    lines = [f"{change.op} {change.type} {change.name} ({change.describe()})" for change in verdict.changes]
    return lines + (verdict.reason.splitlines() if verdict.reason else [])


def render_table(verdicts: Sequence[Verdict]) -> str:
    """One row per stack; a drifted stack's resources and an error's reason continue on the next rows."""
    rows = [("stack", "result", "details")]
    for verdict in verdicts:
        details = _detail_lines(verdict) or [""]
        rows.append((verdict.stack, _result_label(verdict), details[0]))
        rows += [("", "", line) for line in details[1:]]
    stack_width = max(len(row[0]) for row in rows)
    result_width = max(len(row[1]) for row in rows)
    lines = [
        f"{stack:<{stack_width}}  {result:<{result_width}}  {detail}".rstrip()
        for stack, result, detail in rows
    ]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(verdicts: Sequence[Verdict]) -> str:
    """The same result for a GitHub job summary or issue: a table of stacks, then one section per problem."""
    lines = ["### Drift check", "", "| stack | result | details |", "| --- | --- | --- |"]
    for verdict in verdicts:
        if verdict.outcome is Outcome.DRIFTED:
            count = len(verdict.changes)
            summary = (f"{count} resources differ" if count != 1 else "1 resource differs") if count else ""
            summary = summary or verdict.reason
            result = "**drifted**"
        elif verdict.outcome is Outcome.ERROR:
            summary = verdict.reason.splitlines()[0] if verdict.reason else ""
            result = f"**{_result_label(verdict)}**"
        elif verdict.outcome is Outcome.UNHEALTHY:
            count = len(verdict.changes)
            summary = f"{count} resources not ready" if count != 1 else "1 resource not ready"
            result = "**unhealthy**"
        else:
            summary, result = _detail_lines(verdict)[0], "in sync"
        lines.append(_row(_code(verdict.stack), result, _cell(summary)))
    for verdict in verdicts:
        if verdict.outcome is Outcome.DRIFTED:
            lines += ["", f"#### {_code(verdict.stack)}: drifted", ""]
            if verdict.changes:
                lines += ["| op | type | name | what |", "| --- | --- | --- | --- |"]
                lines += [
                    _row(change.op, _code(change.type), _code(change.name), _cell(change.describe()))
                    for change in verdict.changes
                ]
                lines += ["", "<details><summary>URNs</summary>", "", "```text"]
                lines += [change.urn for change in verdict.changes]
                lines += ["```", "", "</details>"]
            if verdict.reason:
                lines += ["", _cell(verdict.reason)]
            lines += [
                "",
                f"`pulumi up --stack {verdict.stack}` puts the cluster back as the program declares it; "
                "to keep a change made in the cluster, change the program or the stack's config to match.",
            ]
        elif verdict.outcome is Outcome.UNHEALTHY:
            lines += ["", f"#### {_code(verdict.stack)}: unhealthy", "", "| type | name | what |"]
            lines += ["| --- | --- | --- |"]
            lines += [
                _row(_code(change.type), _code(change.name), _cell(change.describe()))
                for change in verdict.changes
            ]
            lines += [
                "",
                "The refresh found these resources not ready, so the preview plans an update that only "
                "awaits them again. Nothing differs from what the program declares: this is not drift. Look "
                "at why they are not ready (`kubectl describe`, `make verify STACK=...`).",
            ]
        elif verdict.outcome is Outcome.ERROR:
            lines += ["", f"#### {_code(verdict.stack)}: {_result_label(verdict)}", "", "```text"]
            lines += [verdict.reason.replace("```", "'''"), "```"]
    return "\n".join(lines) + "\n"


# --- Running the CLI (thin) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str


def preview_command(pulumi: str, stack: str) -> list[str]:
    return [
        pulumi,
        "preview",
        "--stack",
        stack,
        "--refresh",
        "--expect-no-changes",
        "--json",
        "--non-interactive",
        "--color",
        "never",
    ]


def run_pulumi_preview(pulumi: str, stack: str, project_dir: Path, timeout: float) -> CliRun:
    """Run the drift preview in the project directory with the caller's environment.

    PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE(_FILE) pass through from the environment.
    """
    env = dict(os.environ)
    # Streaming JSON replaces the one digest this parser reads with an event per line.
    env.pop("PULUMI_ENABLE_STREAMING_JSON_PREVIEW", None)
    # The update check writes a notice to stderr and calls out to the network on every run.
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    returncode, stdout, stderr = run_in_own_group(preview_command(pulumi, stack), project_dir, timeout, env)
    return CliRun(returncode, decoded(stdout, "pulumi", "stdout"), decoded(stderr, "pulumi", "stderr"))


def check_stack(pulumi: str, stack: str, project_dir: Path, timeout: float) -> Verdict:
    try:
        run = run_pulumi_preview(pulumi, stack, project_dir, timeout)
    except FileNotFoundError:
        return Verdict(stack, Outcome.ERROR, reason=f"{pulumi} not found: install the Pulumi CLI")
    except subprocess.TimeoutExpired:
        return Verdict(
            stack,
            Outcome.ERROR,
            reason=f"pulumi preview did not finish within {timeout:g}s; it and its children were stopped",
        )
    except UndecodableOutputError as error:
        return Verdict(stack, Outcome.ERROR, reason=str(error))
    except OSError as error:
        return Verdict(stack, Outcome.ERROR, reason=f"cannot run {pulumi}: {error.strerror or error}")
    return judge(stack, run.exit_code, run.stdout, run.stderr)


# --- Command line -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.drift",
        description="Check stacks for drift (pulumi preview --refresh --expect-no-changes), one row each.",
        epilog="Exit status: 0 all in sync, 1 drift found, 2 a check could not be made, 3 unhealthy "
        "resources but no drift.",
    )
    parser.add_argument(
        "stacks",
        nargs="*",
        metavar="STACK",
        help="stacks to check (default: every Pulumi.<stack>.yaml but those excluded)",
    )
    parser.add_argument(
        "--stack", action="append", default=[], dest="more_stacks", metavar="STACK", help="a stack to check"
    )
    parser.add_argument("--summary", type=Path, metavar="FILE", help="append a Markdown summary to this file")
    parser.add_argument(
        "--list-stacks", action="store_true", help="print the stacks as a JSON list and check nothing"
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="STACK",
        help="leave a stack out of the default set (repeat, or separate names by spaces or commas); "
        "names that are no stack are ignored, so '-' excludes nothing",
    )
    parser.add_argument(
        "--timeout",
        type=seconds(0.1, 86400),
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"seconds one stack's preview may take (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--pulumi", default="pulumi", metavar="PATH", help="the Pulumi CLI to run (default: pulumi on PATH)"
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    known = stack_names(args.project_dir)
    requested = list(dict.fromkeys([*args.stacks, *args.more_stacks]))
    for stack in requested:
        if not _STACK_NAME.match(stack) or stack not in known:
            parser.error(
                f"no stack {stack!r}: there is no Pulumi.{stack}.yaml (stacks: {', '.join(known) or 'none'})"
            )
    # Exclusions narrow the default set only: a stack named on the command line is always checked.
    excluded = {name for value in args.exclude for name in value.replace(",", " ").split()}
    stacks = requested or [stack for stack in known if stack not in excluded]
    if args.list_stacks:
        print(json.dumps(stacks))
        return EXIT_IN_SYNC
    if not stacks:
        parser.error(f"no Pulumi.<stack>.yaml in {args.project_dir}: nothing to check")
    verdicts = []
    for stack in stacks:
        print(f"checking {stack} for drift ...", file=sys.stderr, flush=True)
        verdicts.append(check_stack(args.pulumi, stack, args.project_dir, args.timeout))
    print(render_table(verdicts), end="")
    if args.summary is not None:
        try:
            with args.summary.open("a", encoding="utf-8") as summary:
                summary.write(render_markdown(verdicts))
        except OSError as error:
            # The check ran, but its report went nowhere: a caller must not take this run as done.
            print(
                f"drift: cannot write the summary to {args.summary}: {error.strerror or error}",
                file=sys.stderr,
            )
            return EXIT_ERROR
    return exit_status(verdicts)


def run(argv: Sequence[str] | None = None) -> int:
    """main, with every failure to make the check exiting 2, never 1, which means drift."""
    try:
        return main(argv)
    except Exception:  # an unforeseen failure is a check that could not be made, not drift
        traceback.print_exc()
        print("drift: the check could not be made (see above)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(run())
