#!/usr/bin/env python3
"""Cuts, verbatim, the parts of Microsoft Graph's v1.0 OpenAPI description that keyroll's
requests touch: the two federationConfiguration paths and every component they reference,
transitively. Usage: extract.py SOURCE.yml > graph-v1.0-federationConfiguration.yaml

Verbatim means each kept block is the source's own lines (not re-serialised): the file is
Microsoft's text, fewer blocks of it."""
import re
import sys

import yaml

PATHS = [
    "/domains/{domain-id}/federationConfiguration",
    "/domains/{domain-id}/federationConfiguration/{internalDomainFederation-id}",
]

lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
doc = yaml.safe_load("\n".join(lines))


def block(start, indent):
    """The lines of the mapping entry at `start`, up to the next key at `indent` or less."""
    end = start + 1
    while end < len(lines) and (
        lines[end].strip() == "" or len(lines[end]) - len(lines[end].lstrip(" ")) > indent
    ):
        end += 1
    return lines[start:end]


def section_range(header, indent):
    """Lines [start, end) of a top-level (`indent` 0) or components (`indent` 2) section."""
    start = lines.index(" " * indent + header + ":")
    return start, start + len(block(start, indent))


def entry(section, key, indent):
    start, end = section
    for quoted in (key, "'" + key + "'"):
        wanted = " " * indent + quoted + ":"
        for i in range(start, end):
            if lines[i] == wanted:
                return block(i, indent)
    raise SystemExit(f"{key} not found")


def refs(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                found.add(v)
            else:
                refs(v, found)
    elif isinstance(node, list):
        for v in node:
            refs(v, found)


wanted = set()
for p in PATHS:
    refs(doc["paths"][p], wanted)
kept = {}
todo = list(wanted)
while todo:
    ref = todo.pop()
    if ref in kept:
        continue
    _, _, kind, name = ref.split("/", 3)
    kept[ref] = (kind, name)
    more = set()
    refs(doc["components"][kind][name], more)
    todo.extend(more - set(kept))

out = []
out += lines[: section_range("paths", 0)[0]]  # openapi, info, servers
out.append("paths:")
paths = section_range("paths", 0)
for p in PATHS:
    out += entry(paths, p, 2)
out.append("components:")
components = section_range("components", 0)
for kind in ("schemas", "responses", "parameters", "examples", "requestBodies", "securitySchemes"):
    names = sorted(n for k, n in kept.values() if k == kind)
    if kind == "securitySchemes":
        names = list(doc["components"].get("securitySchemes", {}))
    if not names:
        continue
    start = components[0]
    section = None
    for i in range(components[0], components[1]):
        if lines[i] == "  " + kind + ":":
            section = (i, i + len(block(i, 2)))
    out.append("  " + kind + ":")
    for name in names:
        out += entry(section, name, 4)
if "security" in doc:
    out += block(lines.index("security:"), 0)
sys.stdout.write("\n".join(out).rstrip("\n") + "\n")
