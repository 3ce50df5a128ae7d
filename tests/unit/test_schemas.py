import json

import msgspec

from registry import schemas
from registry.model import LEDGER_RECORDS
from registry.web.api_types import API_TYPES


def test_schemas_on_disk_match_the_types():
    problems = schemas.drift()
    assert not problems, f"run `python -m registry.schemas` to regenerate: {problems}"


def test_drift_is_detected(tmp_path):
    schemas.write(tmp_path)
    assert schemas.drift(tmp_path) == []
    path = tmp_path / "ledger" / "workspace.schema.json"
    doc = json.loads(path.read_text())
    doc["$defs"]["Workspace"]["properties"]["slug"]["type"] = "integer"
    path.write_text(json.dumps(doc))
    (tmp_path / "ledger" / "old.schema.json").write_text("{}")
    assert sorted(schemas.drift(tmp_path)) == ["stale ledger/workspace.schema.json",
                                               "unexpected ledger/old.schema.json"]


def test_every_record_type_has_a_schema():
    generated = schemas.generate()
    assert len(generated) == len(LEDGER_RECORDS) + len(API_TYPES)
    for data in generated.values():
        doc = msgspec.json.decode(data)
        assert doc["$schema"].endswith("2020-12/schema") and "$defs" in doc
