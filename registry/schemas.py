"""JSON Schemas for every ledger record and API request/response, generated from the msgspec types.

`python -m registry.schemas` rewrites `schemas/`; a test regenerates them and fails on any drift,
so the published schemas can't fall behind the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import msgspec

from .model import LEDGER_RECORDS
from .views import API_TYPES

ROOT = Path(__file__).resolve().parent.parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def generate() -> dict[str, bytes]:
    """Relative path under schemas/ -> file content."""
    out: dict[str, bytes] = {}
    for folder, types in (("ledger", LEDGER_RECORDS), ("api", API_TYPES)):
        for type_ in types:
            schema = msgspec.json.schema(type_)
            document = {"$schema": DIALECT, "title": type_.__name__, "description": (type_.__doc__ or "").strip(), **schema}
            data = msgspec.json.format(msgspec.json.encode(document, order="sorted"), indent=2) + b"\n"
            out[f"{folder}/{_kebab(type_.__name__)}.schema.json"] = data
    return out


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
