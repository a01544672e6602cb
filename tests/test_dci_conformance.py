"""The spec the DCI tests validate against: the pinned files (tests/dci_spec/), and the defects patched
before validating, each shown to be real (the spec as written refuses a message it means to allow)."""

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

import dci_support
from dci_support import DEFECTS, SPEC_FILES, Spec, header, now, search_item, search_message, spec_dir

SUMS = Path(__file__).resolve().parent / "dci_spec" / "SHA256SUMS"

pytestmark = pytest.mark.skipif(spec_dir() is None, reason="the DCI spec files are not there (tests/dci_spec/README.md): "
                                "set GUICHET_DCI_SPEC_DIR or put them in ../shared/dci-spec; nothing was validated")


def test_the_spec_files_are_the_pinned_release():
    pinned = dict(reversed(line.split()) for line in SUMS.read_text().splitlines() if line.strip())
    assert set(pinned) == set(SPEC_FILES.values())
    for name, digest in pinned.items():
        assert hashlib.sha256((spec_dir() / name).read_bytes()).hexdigest() == digest, name


class Unpatched(Spec):
    """The spec as written: every file read as is."""

    def __init__(self, directory: Path):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4

        self.docs = {api: yaml.safe_load((directory / name).read_text()) for api, name in SPEC_FILES.items()}
        self.registry = Registry().with_resources(
            (f"urn:dci:{api}", Resource.from_contents(doc, default_specification=DRAFT4)) for api, doc in self.docs.items())


def _envelope(message: dict, action: str = "search") -> dict:
    return {"header": header(action, "spmis.example", total_count=1), "message": message}


def test_each_patched_defect_is_real():
    raw, patched = Unpatched(spec_dir()), dci_support.spec()
    assert len(DEFECTS) >= 8
    sync = ("sr", raw.request_pointer("sr", "/registry/sync/search"))
    # An expression query matches two alternatives of the spec's oneOf: the spec as written refuses it.
    expression = _envelope(search_message(search_item("expression", {"type": "NoSql", "value": {"expression": {
        "collection": "Group", "query": {"poverty_score": {"$lt": 2}}}}})))
    assert raw.errors(*sync, expression) and not patched.errors(*sync, expression)
    # So does a predicate with a whole-number value (integer and number are both alternatives).
    predicate = _envelope(search_message(search_item("predicate", [{"seq_num": 1, "expression1": {
        "attribute_name": "group_size", "operator": "le", "attribute_value": 5}}])))
    with pytest.raises(Exception):  # as written, its $ref runs through another $ref: it cannot even be resolved
        raw.errors(*sync, predicate)
    assert not patched.errors(*sync, predicate)
    # UnSubscribeRequest requires properties it does not define.
    unsubscribe = {"transaction_id": "T", "timestamp": now(), "subscription_codes": ["S-1"]}
    pointer = "/components/schemas/UnSubscribeRequest"
    assert raw.errors("core", pointer, unsubscribe) and not patched.errors("core", pointer, unsubscribe)
    # SubscriptionInfo too.
    info = {"code": "S-1", "status": "subscribe", "timestamp": now(), "reg_event_type": "Death"}
    pointer = "/components/schemas/SubscriptionInfo"
    assert raw.errors("core", pointer, info) and not patched.errors("core", pointer, info)
    # A message that breaks the spec is still refused after the patches.
    broken = copy.deepcopy(expression)
    broken["message"]["search_request"][0]["search_criteria"]["query_type"] = "sql"
    del broken["header"]["message_id"]
    assert len(patched.errors(*sync, broken)) >= 1
