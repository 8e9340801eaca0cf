"""The `loa` command line."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("loa: not yet wired", file=sys.stderr)
    return 1
