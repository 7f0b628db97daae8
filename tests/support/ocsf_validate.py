#!/usr/bin/env python3
"""Validates OCSF Detection Findings (JSON Lines on stdin) against the schema as the
py-ocsf-models package (PyPI) models it: required fields, types and enumerations by pydantic,
and, stricter than pydantic's default, no field the schema does not define, at any depth.
Prints "ok N" or the problems, one per line, and exits non-zero on any."""
import json
import sys
import typing

from pydantic import BaseModel
from py_ocsf_models.events.findings.detection_finding import DetectionFinding


def model_of(annotation):
    """The pydantic model inside Optional[...] / list[...], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        m = model_of(arg)
        if m is not None:
            return m
    return None


def unknown_fields(model, value, path):
    problems = []
    if isinstance(value, list):
        for i, v in enumerate(value):
            problems += unknown_fields(model, v, f"{path}[{i}]")
        return problems
    if not isinstance(value, dict):
        return problems
    fields = model.model_fields
    for k, v in value.items():
        if k not in fields:
            problems.append(f"{path}.{k}: not a field of {model.__name__}")
            continue
        inner = model_of(fields[k].annotation)
        if inner is not None:
            problems += unknown_fields(inner, v, f"{path}.{k}")
    return problems


def main():
    problems = []
    n = 0
    for i, line in enumerate(sys.stdin):
        if not line.strip():
            continue
        n += 1
        obj = json.loads(line)
        try:
            DetectionFinding.model_validate(obj)
        except Exception as e:  # pydantic.ValidationError, with every problem listed
            problems.append(f"line {i + 1}: {e}")
        problems += [f"line {i + 1}: {p}" for p in unknown_fields(DetectionFinding, obj, "$")]
        if obj.get("type_uid") != obj.get("class_uid", 0) * 100 + obj.get("activity_id", -1):
            problems.append(f"line {i + 1}: type_uid is not class_uid * 100 + activity_id")
    if problems or n == 0:
        print("\n".join(problems) or "no findings")
        sys.exit(1)
    print(f"ok {n}")


if __name__ == "__main__":
    main()
