"""The package's defaults are the schema's: the values Snakemake fills in for an empty config."""

from __future__ import annotations

import pytest
from snakemake.utils import validate

from photoarchive.faces import DETECTOR_DEFAULTS, PASTE_DEFAULTS
from photoarchive.matting import DEFAULTS as MATTING_DEFAULTS
from photoarchive.restore import CLASSICAL_DEFAULTS, CONTROL_DEFAULTS, RESTORE_DEFAULTS
from photoarchive.settings import SCHEMA_FILE, schema_defaults


@pytest.fixture(scope="module")
def filled():
    config: dict = {}
    validate(config, str(SCHEMA_FILE))  # fills every default in, as the workflow does at start-up
    return config


def test_schema_defaults_match_what_the_workflow_fills_in(filled):
    for section in ("faces", "matting", "restore", "repair", "enhance", "qa", "scheduling"):
        assert schema_defaults(section) == filled[section], section
    assert schema_defaults("restore", "paste") == filled["restore"]["paste"]


def test_module_defaults_come_from_the_schema(filled):
    assert DETECTOR_DEFAULTS == filled["faces"]
    assert PASTE_DEFAULTS == filled["restore"]["paste"]
    assert MATTING_DEFAULTS == filled["matting"]
    assert RESTORE_DEFAULTS == filled["restore"]
    assert CLASSICAL_DEFAULTS == filled["restore"]["classical"]
    assert CONTROL_DEFAULTS["strength"] == filled["restore"]["strength"]


def test_defaults_are_fresh_copies():
    first = schema_defaults("restore")
    first["paste"]["erode"] = -1
    assert schema_defaults("restore")["paste"]["erode"] != -1
