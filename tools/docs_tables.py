"""Generated reference tables: docs/model.md (output variables, parameters) and
docs/scale_out.md (every bad input a sweep refuses and its message).

``python -m tools.docs_tables`` prints the tables; ``python -m tools.docs_tables --write
docs/model.md`` (or ``docs/scale_out.md``) rewrites that document's generated blocks in place
(between ``<!-- BEGIN GENERATED: name -->`` and ``<!-- END GENERATED: name -->``). Tests check that
the documents hold the current tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from limits.model.outputs import BOUND_LABELS, OUTPUTS
from limits.model.params import PARAMETER_GROUPS
from limits.units import UNIT_KINDS

__all__ = ["output_table", "parameter_table", "generated_blocks", "update_document", "DOCUMENTS"]


def output_table() -> str:
    """Markdown table of every output variable: name, units, meaning."""
    rows = ["| output | units | meaning |", "|---|---|---|"]
    for name, (units, meaning) in OUTPUTS.items():
        if name == "bound":
            meaning += (
                " (index into "
                + ", ".join(f"{i}: {label}" for i, label in enumerate(BOUND_LABELS))
                + ")"
            )
        rows.append(f"| `{name}` | {units} | {meaning} |")
    return "\n".join(rows)


def _range(spec) -> str:
    left = "(" if spec.lo_open else "["
    right = "]" if math.isfinite(spec.hi) or spec.allow_inf else ")"
    text = f"{left}{spec.lo:g}, {spec.hi:g}{right}"
    return f"whole, {text}" if spec.integer else text


def _default(value) -> str:
    return f"{value:g}" if isinstance(value, float) else f"`{value}`"


def parameter_table() -> str:
    """Markdown table of every parameter: name, group, unit, allowed range, default, meaning."""
    rows = ["| parameter | group | unit | range | default | meaning |", "|---|---|---|---|---|---|"]
    for group, cls in PARAMETER_GROUPS.items():
        for f in dataclasses.fields(cls):
            if "spec" in f.metadata:
                spec = f.metadata["spec"]
                unit = "1" if spec.unit == "1" else UNIT_KINDS[spec.unit][1]
                rows.append(
                    f"| `{f.name}` | {group} | {unit} | {_range(spec)} | "
                    f"{_default(f.default)} | {spec.doc} |"
                )
            else:
                choices = f.metadata.get("choices")
                allowed = ", ".join(choices) if choices else "any text"
                rows.append(
                    f"| `{f.name}` | {group} | static | {allowed} | "
                    f"{_default(f.default)} | {f.metadata.get('doc', '')} |"
                )
    return "\n".join(rows)


def generated_blocks() -> dict[str, str]:
    """Name -> content of each generated block of docs/model.md."""
    return {"outputs": output_table(), "parameters": parameter_table()}


def scale_out_blocks() -> dict[str, str]:
    """Name -> content of each generated block of docs/scale_out.md."""
    from tools.bad_inputs import bad_input_table

    return {"bad_inputs": bad_input_table()}


#: document file name -> its generated blocks
DOCUMENTS: dict[str, Callable[[], dict[str, str]]] = {
    "model.md": generated_blocks,
    "scale_out.md": scale_out_blocks,
}


def _marked(name: str, body: str) -> str:
    return f"<!-- BEGIN GENERATED: {name} -->\n{body}\n<!-- END GENERATED: {name} -->"


def update_document(text: str, blocks: Mapping[str, str] | None = None) -> str:
    """``text`` with every generated block (default: docs/model.md's) replaced by its
    current content."""
    for name, body in (generated_blocks() if blocks is None else blocks).items():
        pattern = re.compile(
            rf"<!-- BEGIN GENERATED: {name} -->.*?<!-- END GENERATED: {name} -->", re.S
        )
        if not pattern.search(text):
            raise ValueError(f"document has no generated block {name!r}")
        text = pattern.sub(_marked(name, body).replace("\\", "\\\\"), text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="rewrite the generated blocks of this file")
    args = parser.parse_args(argv)
    if args.write:
        blocks = DOCUMENTS[args.write.name]()
        args.write.write_text(update_document(args.write.read_text(), blocks))
    else:
        for make in DOCUMENTS.values():
            for name, body in make().items():
                print(_marked(name, body), end="\n\n")


if __name__ == "__main__":
    main()
