"""``python -m refarith.certify.deployed --install-list [--without LIB,...]``: print the requirements of the
deployed libraries on one line, for ``pip install --no-deps`` (see :func:`refarith.certify.deployed.install_list`);
a bad argument is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys

from refarith.certify.deployed import install_list
from refarith.errors import KernelError


def main(argv: list[str] | None = None) -> int:
    """Print the install list; 0, or 2 on bad input."""
    ap = argparse.ArgumentParser(prog="python -m refarith.certify.deployed",
                                 description="the requirements of the deployed libraries, for pip install --no-deps")
    def error(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)

    ap.error = error  # one line, not argparse's usage block
    ap.add_argument("--install-list", action="store_true", required=True, help="print the requirements on one line")
    ap.add_argument("--without", default="", metavar="LIB,...", help="adapters whose library to leave out")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        print(" ".join(install_list(tuple(n for n in args.without.split(",") if n))))
    except KernelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
