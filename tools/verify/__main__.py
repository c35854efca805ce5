import sys
import traceback

try:
    from tools.verify.cli import run
except Exception:  # a broken install is a check not made (exit 2), never a failed check (exit 1)
    traceback.print_exc()
    print("verify: could not start (see above)", file=sys.stderr)
    sys.exit(2)

sys.exit(run())
