"""What a run's verdicts add up to: the last line and the exit status."""

from __future__ import annotations

from tools.verify.check import Check, summary

OK = Check("ok", "controller", "1/1 ready")
WARN = Check("warn", "udp", "no reply")
FAILED = Check("FAIL", "pools", "lan-pool is missing")
NOT_MADE = Check("error", "dns", "no answer")


def test_warnings_and_skips_pass_and_are_named():
    assert summary("beam00", [OK, WARN, Check("skip", "arp", "--no-arp")]) == (
        "ok    no check failed for stack beam00 (1 warning: udp)",
        0,
    )


def test_a_failed_check_is_1():
    assert summary("beam00", [OK, FAILED, WARN]) == ("FAIL  1 of 3 checks failed for stack beam00: pools", 1)


def test_a_check_not_made_is_2_and_outranks_a_failure_it_may_hide():
    assert summary("beam00", [FAILED, NOT_MADE]) == (
        "error 1 of 2 checks could not be made for stack beam00: dns; 1 failed: pools",
        2,
    )


def test_a_line_aligns_status_and_name():
    assert FAILED.line() == "FAIL  pools           lan-pool is missing"
