"""Check one stack end to end, as the runbook's "Verify MetalLB Status" and "Testing Accessibility" do.

    python -m tools.verify --stack kind-dev [--resolver IP[:PORT]] [--timeout S] [--strict-udp] [--no-arp]
    python -m tools.verify --all [--json]

It prints one line per check, `ok`, `FAIL`, `warn`, `skip` or `error`, then the check's name and what it
saw. What each check looks at, and what a UDP probe can and cannot prove, is written once, in the README's
"Verification" section. Exit status: 0 no check failed (warnings and skips allowed), 1 a check failed,
2 a check could not be made (`error`) or the stack cannot be read, which outranks a failure: a check not
made may hide one.

One module per concern: `cli` (the command line), `run` (a stack's checks in order), `kube_checks` (the
Kubernetes checks, a table of name, read and judge), `cluster` (what is read, each once), `dns_check`,
`quic_probe` (the udp check), `arp_check` with `arp_probe`, `stack` (the stack's config, secrets
decrypted) and `fleet_status` (`--all`).
"""
