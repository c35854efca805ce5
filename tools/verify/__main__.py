import sys

from tools.verify.cli import run

sys.exit(run())
