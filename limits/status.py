"""``python -m limits.status [--verify] STORE [STORE ...]``: is a store complete? One line
per store.

Prints which blocks were never written and the command that writes them; with ``--verify``
also reads every written chunk and names the files that are missing or fail their CRC32C
checksum, and says when a store was written before checksums or records no code hash.
``--upgrade`` adds CRC32C checksums to such a store after reading every chunk back
(``limits.sweep.upgrade``). Exits 0 when every store is complete (and intact), 1 when one is
incomplete or damaged (or, with ``--verify``, has no checksums), 2 when one cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys

from limits.errors import StoreError
from limits.sweep.integrity import (
    INTEGRITY_ATTR,
    completeness,
    damaged_blocks,
    describe_damage,
)
from limits.sweep.upgrade import integrity_notes, upgrade

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m limits.status", description=__doc__)
    parser.add_argument("stores", nargs="+", help="zarr stores (sweep.zarr, consolidated.zarr)")
    parser.add_argument("--verify", action="store_true", help="read and check every chunk")
    parser.add_argument(
        "--upgrade",
        action="store_true",
        help="add CRC32C checksums to a store written before them (every chunk read back first)",
    )
    args = parser.parse_args(argv)
    code = 0
    for store in args.stores:
        try:
            if args.upgrade:
                print(upgrade(store))
            record = completeness(store)
        except StoreError as err:
            print(f"limits.status: error: {err}", file=sys.stderr)
            code = 2
            continue
        print(record.describe(limit=32))
        if not record.complete:
            code = max(code, 1)
        if args.verify and (record.path / "_progress" / "block_done").is_dir():
            attrs = json.loads((record.path / "zarr.json").read_text()).get("attributes", {})
            damaged = damaged_blocks(record.path)
            checked = (
                "matched its checksum" if INTEGRITY_ATTR in attrs else "decoded (no checksums)"
            )
            print(
                describe_damage(record.path, damaged, limit=32)
                if damaged
                else f"{record.path}: every written chunk read back and {checked}"
            )
            code = max(code, 1 if damaged else 0)
            for note in integrity_notes(record.path, attrs):
                print(note)
            if INTEGRITY_ATTR not in attrs:
                code = max(code, 1)  # no checksums: nothing can say its numbers are intact
    return code


if __name__ == "__main__":
    sys.exit(main())
