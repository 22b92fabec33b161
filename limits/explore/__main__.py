"""``python -m limits.explore STORE``: serve the explorer on a local port (docs/explore.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m limits.explore",
        description="Explore a results store in the browser: a slider per grid axis, the "
        "Pareto chart, the bound map, hover details. Reads only the slice on screen.",
    )
    parser.add_argument("store", help="a sweep store (sweep.zarr), run or multirun directory")
    parser.add_argument("--port", type=int, default=5006, help="local port (default 5006)")
    parser.add_argument("--x", default="utps", help="x axis of the Pareto chart (default utps)")
    parser.add_argument("--y", default="stps", help="y axis of the Pareto chart (default stps)")
    parser.add_argument("--show", action="store_true", help="open the page in a browser")
    args = parser.parse_args(argv)
    if not Path(args.store).exists():
        print(f"limits.explore: error: no results at {args.store}", file=sys.stderr)
        return 2
    try:
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import Server
    except ImportError:
        print(
            "limits.explore: error: needs bokeh: pip install 'llm-limits[explore]'",
            file=sys.stderr,
        )
        return 2
    from limits.analysis import open_results
    from limits.analysis._common import metric
    from limits.explore import make_document

    try:  # refuse a bad store or variable before serving
        ds = open_results(args.store)
        metric(ds, args.x), metric(ds, args.y)
    except (KeyError, FileNotFoundError, ValueError) as err:
        print(f"limits.explore: error: {err}", file=sys.stderr)
        return 2
    app = Application(FunctionHandler(partial(make_document, path=args.store, x=args.x, y=args.y)))
    server = Server({"/": app}, port=args.port, address="127.0.0.1")
    server.start()
    print(f"limits.explore: serving {args.store} at http://127.0.0.1:{server.port}/", flush=True)
    if args.show:
        server.io_loop.add_callback(server.show, "/")
    server.io_loop.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
