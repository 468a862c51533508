"""The project's copy of the results contract is the shared one, and the committed results obey it."""
import json
import os

import pytest

from matrix.paths import REPO
from tests.helpers import SCHEMA, SHARED_SCHEMA, load_schema

jsonschema = pytest.importorskip("jsonschema")


def test_the_copy_of_the_schema_equals_the_shared_one():
    if not os.path.exists(SHARED_SCHEMA):
        pytest.skip(f"{SHARED_SCHEMA} is not on this machine: the copy in the repository is the contract")
    with open(SHARED_SCHEMA) as shared, open(SCHEMA) as ours:
        assert json.load(ours) == json.load(shared), "matrix/report/results.schema.json differs from ../shared"


@pytest.mark.parametrize("size", ["", "full"])
def test_committed_results_validate_against_the_schema(size):
    path = os.path.join(REPO, "results", size, "matrix.json")
    with open(path) as fh:
        doc = json.load(fh)
    jsonschema.Draft202012Validator(load_schema()).validate(doc)


def test_the_validator_rejects_a_broken_document():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(load_schema()).validate({"schema": 2, "cells": []})
