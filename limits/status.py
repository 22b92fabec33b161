"""``python -m limits.status [--verify] STORE [STORE ...]``: is a store complete? One line
per store.

Prints which blocks were never written and the command that writes them; with ``--verify``
also reads every written chunk and names the files that are missing or fail their CRC32C
checksum. Exits 0 when every store is complete (and intact), 1 when one is incomplete or
damaged, 2 when one cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from limits.errors import StoreError
from limits.sweep.integrity import completeness, damaged_blocks, describe_damage

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m limits.status", description=__doc__)
    parser.add_argument("stores", nargs="+", help="zarr stores (sweep.zarr, consolidated.zarr)")
    parser.add_argument("--verify", action="store_true", help="read and check every chunk")
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
        if args.verify and (record.path / "_progress" / "block_done").is_dir():
            damaged = damaged_blocks(record.path)
            print(
                describe_damage(record.path, damaged, limit=32)
                if damaged
                else f"{record.path}: every written chunk read back and matched its checksum"
            )
            code = max(code, 1 if damaged else 0)
    return code


if __name__ == "__main__":
    sys.exit(main())
