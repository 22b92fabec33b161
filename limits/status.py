"""``python -m limits.status STORE [STORE ...]``: is a store complete? One line per store.

Prints which blocks were never written and the command that writes them; exits 0 when every
store is complete, 1 when one is incomplete, 2 when one cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from limits.errors import StoreError
from limits.sweep.integrity import completeness

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m limits.status", description=__doc__)
    parser.add_argument("stores", nargs="+", help="zarr stores (sweep.zarr, consolidated.zarr)")
    args = parser.parse_args(argv)
    code = 0
    for store in args.stores:
        try:
            record = completeness(store)
        except StoreError as err:
            print(f"limits.status: error: {err}", file=sys.stderr)
            code = 2
            continue
        print(record.describe(limit=32))
        if not record.complete:
            code = max(code, 1)
    return code


if __name__ == "__main__":
    sys.exit(main())
