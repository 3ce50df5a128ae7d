"""JSON Schemas for every ledger record and API request/response, generated from the msgspec types.

`python -m registry.schemas` rewrites `schemas/`; a test regenerates them and fails on any drift,
so the published schemas can't fall behind the code.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

import msgspec

from .model import LEDGER_RECORDS
from .web.api_types import API_TYPES

ROOT = Path(__file__).resolve().parent.parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def generate() -> dict[str, bytes]:
    """Relative path under schemas/ -> file content."""
    out: dict[str, bytes] = {}
    for folder, types in (("ledger", LEDGER_RECORDS), ("api", API_TYPES)):
        for type_ in types:
            schema = _clean(msgspec.json.schema(type_))
            document = {"$schema": DIALECT, "title": type_.__name__,
                        "description": inspect.cleandoc(type_.__doc__ or ""), **schema}
            data = msgspec.json.format(msgspec.json.encode(document, order="sorted"), indent=2) + b"\n"
            out[f"{folder}/{_kebab(type_.__name__)}.schema.json"] = data
    return out


def _clean(node: Any) -> Any:  # (a JSON value: msgspec's schemas are dict[str, Any])
    """Descriptions dedented by us, not by msgspec (whose way with docstrings differs by release),
    so the generated files depend only on the code."""
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _clean(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def drift(root: Path = ROOT) -> list[str]:
    """What differs between the generated schemas and the files in ``root``."""
    expected = generate()
    problems = []
    for rel, data in expected.items():
        path = root / rel
        if not path.exists():
            problems.append(f"missing {rel}")
        elif path.read_bytes() != data:
            problems.append(f"stale {rel}")
    for path in root.rglob("*.schema.json"):
        if path.relative_to(root).as_posix() not in expected:
            problems.append(f"unexpected {path.relative_to(root)}")
    return problems


def write(root: Path = ROOT) -> None:
    for rel, data in generate().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


if __name__ == "__main__":
    if "--check" in sys.argv:
        problems = drift()
        print("\n".join(problems) or "schemas are up to date")
        raise SystemExit(1 if problems else 0)
    write()
    print(f"wrote {len(generate())} schemas under {ROOT}")
