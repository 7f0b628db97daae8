#!/usr/bin/env python3
"""Checks the service's OpenAPI document and real answers against it.

Reads JSON on stdin: {"doc": <the OpenAPI document>, "samples": [{"method", "path" (the route's
template), "status", "body"}]}. Validates the document against the OpenAPI 3.1 specification
(openapi-spec-validator, from PyPI), then each answer against the schema the document gives for
that route and status (JSON Schema 2020-12, jsonschema). Prints "ok N" or the problems; exits
non-zero on any."""
import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate


def main():
    data = json.load(sys.stdin)
    doc = data["doc"]
    problems = []
    try:
        validate(doc)
    except Exception as e:  # the validator's error names the offending path
        problems.append(f"the document: {e}")
    for s in data["samples"]:
        op = doc["paths"].get(s["path"], {}).get(s["method"].lower())
        if op is None:
            problems.append(f"{s['method']} {s['path']}: not in the document")
            continue
        content = op["responses"].get(str(s["status"]), {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            problems.append(f"{s['method']} {s['path']} {s['status']}: no response schema")
            continue
        root = dict(schema)
        root["components"] = doc["components"]
        for e in Draft202012Validator(root).iter_errors(s["body"]):
            where = "/".join(str(p) for p in e.absolute_path)
            problems.append(f"{s['method']} {s['path']}: at {where or 'the top'}: {e.message[:300]}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"ok {len(data['samples'])}")


if __name__ == "__main__":
    main()
