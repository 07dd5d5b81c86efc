"""Validates a FHIR Bundle of AuditEvents with the fhir.resources models (FHIR R4B, whose
AuditEvent is R4's), and checks that the validator refuses a broken copy, so a pass means
something. Usage: validate_fhir.py BUNDLE.json; exit 0 when valid, 1 otherwise."""

import copy
import json
import sys

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as error:
        print(f"the Bundle does not validate:\n{error}")
        return 1
    events = 0
    for number, entry in enumerate(data.get("entry", [])):
        try:
            AuditEvent.model_validate(entry["resource"])
        except ValidationError as error:
            print(f"entry {number} does not validate as an AuditEvent:\n{error}")
            return 1
        events += 1
    if bundle.type != "collection" or events == 0:
        print(f"expected a collection with AuditEvents, got {bundle.type} with {events}")
        return 1
    # The validator must refuse what R4 forbids: an AuditEvent without its required
    # `recorded`, a requestor that is not a boolean, an element R4 does not define.
    broken = copy.deepcopy(data["entry"][0]["resource"])
    del broken["recorded"]
    bad_requestor = copy.deepcopy(data["entry"][0]["resource"])
    bad_requestor["agent"][0]["requestor"] = "perhaps"
    unknown = copy.deepcopy(data["entry"][0]["resource"])
    unknown["logIndex"] = 0
    for name, resource in (
        ("missing recorded", broken),
        ("non-boolean requestor", bad_requestor),
        ("element R4 does not define", unknown),
    ):
        try:
            AuditEvent.model_validate(resource)
        except ValidationError:
            continue
        print(f"the validator accepted an AuditEvent with a {name}: it checks nothing")
        return 1
    print(f"fhir.resources: the Bundle and its {events} AuditEvents validate")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
