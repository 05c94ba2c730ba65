"""``compat validate REF|FILE``: every problem of an index or a variants file, with its
location; exit 0 when clean, 1 when not."""
from __future__ import annotations

import json
import os
import sys

from compat.errors import BadInput, printable


def problems_of_file(path: str):
    from compat.author import lint
    from compat.author.variants import full_key, parse_text
    from compat.schema import full_errors

    try:
        with open(path, encoding="utf-8") as fh:
            data = parse_text(fh.read(), path)
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    if isinstance(data, dict) and "variants" in data:
        out = [lint.Problem("error", path, f"schema: {e}") for e in full_errors(data, "variants")]
        if out:
            return out
        for i, v in enumerate(data["variants"]):
            ann = {full_key(k): str(val) for k, val in (v.get("annotations") or {}).items()}
            out += lint.check_annotations(ann, f"variants[{i}] ({v['ref']})")
        return out
    if isinstance(data, dict) and "manifests" in data:
        return lint.lint_index(data)
    raise BadInput(f"{path}: neither an image index (no 'manifests') nor a variants file (no 'variants')")


def problems_of_ref(text: str, plain_http: bool, timeout: float):
    from compat.author import lint
    from compat.cli.refs import source
    from compat.oci import media
    from compat.oci.source import Source

    src = Source(source(text), plain_http=plain_http, timeout=timeout)
    try:
        digest, mt, doc = src.resolve()
        if mt not in media.INDEXES:
            return lint.check_annotations(doc.get("annotations") or {}, f"{text} (an image manifest)")
        out = lint.lint_index(doc)
        for i, d in enumerate(doc["manifests"]):
            if d.get("mediaType") in media.INDEXES:
                child = src.fetch(d["digest"], d["mediaType"])
                out += [lint.Problem(p.level, f"manifests[{i}] > {p.location}", p.message)
                        for p in lint.lint_index(child)]
        return out
    finally:
        src.close()


def run(args) -> int:
    target = args.target
    if os.path.isfile(target):
        problems = problems_of_file(target)
    else:
        problems = problems_of_ref(target, args.plain_http, args.timeout)
    errors = sum(1 for p in problems if p.level == "error")
    warnings = len(problems) - errors
    if args.json:
        json.dump({"schema": "compat.validation/v1", "target": target, "errors": errors, "warnings": warnings,
                   "problems": [p._asdict() for p in problems]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for p in problems:
            print(printable(str(p), 1000))
        shown = printable(target, 300)
        print(f"{shown}: {errors} error(s), {warnings} warning(s)" if problems else f"{shown}: clean")
    return 1 if problems else 0
