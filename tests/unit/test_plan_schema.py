"""The plan's JSON Schema (docs/plan.schema.json) is generated from the Plan model and cannot drift from it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from golive.plans import FOLDER
from golive.shared.plan import plan_schema

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "plan.schema.json"


def test_committed_schema_is_the_one_the_plan_model_generates():
    assert COMMITTED.read_text() == plan_schema(), (
        "docs/plan.schema.json is stale: refresh it with `golive plan schema --out docs/plan.schema.json`"
    )


# with format checks: "format" is part of the contract a plan editor or CI linter enforces (jsonschema checks "time"
# only with rfc3339-validator installed: the test extra's jsonschema[format-nongpl])
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def test_the_format_checker_checks_times():
    assert "time" in FORMATS.checkers, "install jsonschema[format-nongpl] (the test extra) to check formats"


@pytest.mark.parametrize("plan", sorted(FOLDER.glob("*.yaml")), ids=lambda p: p.name)
def test_every_plan_in_the_repo_is_valid_under_the_schema(plan):
    jsonschema.validate(yaml.safe_load(plan.read_text()), json.loads(plan_schema()), format_checker=FORMATS)


def test_the_schema_refuses_what_the_plan_refuses_in_a_maintenance_window():
    schema = json.loads(plan_schema())
    plan = {"name": "x", "database": {"url_env": "DB"}, "canary": {"stages": [{"weight": 100, "hold": "1m"}]},
            "window": {"maintenance": {"days": ["sun"], "start": "02:00", "end": "04:00:30"}}}
    jsonschema.validate(plan, schema, format_checker=FORMATS)
    for wrong in ("2am", "24:00", "02:60", "2:00"):
        plan["window"]["maintenance"]["start"] = wrong
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(plan, schema, format_checker=FORMATS)


def test_schema_accepts_durations_as_written_and_refuses_misspelt_keys():
    schema = json.loads(plan_schema())
    plan = {"name": "x", "database": {"url_env": "DB"}, "analysis": {"interval": "30s"},
            "canary": {"stages": [{"weight": 100, "hold": "1h30m"}]}, "post_deploy": {"period": "7d"}}
    jsonschema.validate(plan, schema)

    plan["canary"]["stages"][0]["hodl"] = "5m"
    with pytest.raises(jsonschema.ValidationError, match="hodl"):
        jsonschema.validate(plan, schema)
