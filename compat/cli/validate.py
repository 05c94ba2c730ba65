"""``compat validate REF|FILE``: every problem of an index or a variants file, with its
location; exit 0 when clean, 1 when not."""
from __future__ import annotations

import json
import os
import sys

from compat.author import lint
from compat.author.sif import artifact_problems, child_problems, sif_children
from compat.cli.refs import source
from compat.errors import BadInput, printable
from compat.oci import manifest, media
from compat.oci.sif import is_sif_manifest
from compat.oci.source import Source


def problems_of_file(path: str):
    # start-up: the variants-file reader loads only for a file
    from compat.author import variants as V

    data = V.read(path)
    if isinstance(data, dict) and "variants" in data:
        variants, _, index_annotations, problems = V.check(data)
        out = [lint.Problem("error", where, message) for where, message in problems]
        out += lint.check_index_annotations(index_annotations, "index annotations")
        for i, v in enumerate(variants):
            out += lint.check_annotations(v.annotations, lint.position(i, v.ref), v.platform)
        return out
    if isinstance(data, dict) and "manifests" in data:
        return lint.lint_index(data)
    raise BadInput(f"{path}: neither an image index (no 'manifests') nor a variants file (no 'variants')")


def problems_of_ref(text: str, plain_http: bool, timeout: float):
    src = Source(source(text), plain_http=plain_http, timeout=timeout)
    try:
        digest, mt, doc = src.resolve(descriptors=False)     # lint reports each malformed one
        if mt not in media.INDEXES:
            where = f"{text} (an image manifest)"
            out = lint.check_annotations(doc.get("annotations") or {}, where)
            return out + (artifact_problems(src, doc, where)[1] if is_sif_manifest(doc) else [])
        out = lint.lint_index(doc, fetch=src.fetch, sifs=sif_children(src, doc)) + child_problems(src, doc)
        for i, d in enumerate(doc["manifests"]):
            if not manifest.descriptor_problems(d) and d["mediaType"] in media.INDEXES:
                child = src.fetch(d["digest"], d["mediaType"])
                out += [lint.Problem(p.level, f"{lint.position(i)} > {p.location}", p.message)
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
