"""NFD image-compatibility artifacts (v1alpha1) generated from compat annotations, so that
``nfd compat validate-node`` users see the same requirements.

Only keys with an NFD feature are translated (spec/vocabulary.md lists which); the others
(CUDA, MPI, ROCm versions) have no NFD feature and are left out, said in the artifact's
description.  Artifact identifiers follow NFD's ``api/image-compatibility/v1alpha1``.
"""
from __future__ import annotations

import json
import re

from compat.nfd.cpuid import cpuid_name
from compat.oci import digest as M, media
from compat.vocab import annotations as A
from compat.vocab.data import fabric_drivers, fabric_pci, gpu_pci, nfd_cpu_vendors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Tuple

ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
SPEC_MEDIA_TYPE = "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml"
EMPTY_CONFIG = {"mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}
CREATED = "org.opencontainers.image.created"
#: on compat's artifacts: the spec layer's digest, so that a re-run attaches nothing new
SPEC_DIGEST = "org.hpc-compat.nfd.spec-digest"

def fabric_terms(fabric: str) -> List[dict]:
    """The NFD rule terms that show ``fabric``: the HCA's PCI vendor and class where the fabric
    has its own (InfiniBand, RoCE), else its NIC driver among the loaded kernel modules."""
    pci = fabric_pci().get(fabric)
    if pci:
        return [{"feature": "pci.device", "matchExpressions": {"vendor": {"op": "In", "value": [pci["vendor"]]},
                                                              "class": {"op": "In", "value": [pci["class"]]}}}]
    return [{"feature": "kernel.loadedmodule", "matchExpressions": {fabric_drivers(fabric)[0]: {"op": "Exists"}}}]


#: keys with no NFD feature (they need compat's own detection)
NO_EQUIVALENT = ("gpu.cuda.version", "gpu.cuda.arch", "gpu.amd.arch", "gpu.rocm.version",
                 "mpi.implementation", "mpi.version", "mpi.abi", "mpi.mode", "mpi.pmi",
                 "fabric.providers", "libc.glibc", "runtime", "runtime.needs")


_KERNEL_PARTS = ("major", "minor", "revision")
_STRICT = {">=": "Gt", ">": "Gt", "<=": "Lt", "<": "Lt"}


def _kernel_alternatives(op: str, parts: List[str]) -> List[Dict[str, dict]]:
    """``kernel.version`` expressions (one mapping per alternative) for ``op parts``, compared
    field by field with integers: NFD's ``full`` is no semantic version on most distributions
    (``4.18.0-513.el8.x86_64`` is refused by Masterminds semver), its major/minor/revision are
    plain numbers."""
    names = _KERNEL_PARTS[:len(parts)]
    if op == "==":
        return [{n: {"op": "In", "value": [p]} for n, p in zip(names, parts)}]
    alts = []
    for i, (name, part) in enumerate(zip(names, parts)):
        last = i == len(parts) - 1
        cmp = {">=": "Ge", "<=": "Le"}.get(op, _STRICT[op]) if last else _STRICT[op]
        alt = {n: {"op": "In", "value": [p]} for n, p in zip(names[:i], parts[:i])}
        alt[name] = {"op": cmp, "value": [part]}
        alts.append(alt)
    return alts


def _kernel_rules(spec: str) -> Tuple[List[dict], List[str]]:
    rules, skipped = [], []
    for clause in spec.split(","):
        m = re.fullmatch(r"\s*(>=|<=|>|<|==)\s*([0-9]+(?:\.[0-9]+){0,2})\s*", clause)
        if not m:
            skipped.append(clause.strip())
            continue
        alts = _kernel_alternatives(m.group(1), [str(int(p)) for p in m.group(2).split(".")])
        terms = [[{"feature": "kernel.version", "matchExpressions": alt}] for alt in alts]
        rule = {"name": f"compat kernel {m.group(1)}{m.group(2)}"}
        if len(terms) == 1:
            rule["matchFeatures"] = terms[0]
        else:
            rule["matchAny"] = [{"matchFeatures": t} for t in terms]
        rules.append(rule)
    return rules, skipped


def rules_for(req: A.Requirements) -> Tuple[List[dict], List[str]]:
    """(NFD group rules, the compat keys left out) for one descriptor's requirements."""
    rules: List[dict] = []
    left_out = [k for k in NO_EQUIVALENT if k in req]
    cpu_terms: List[dict] = []
    if "cpu.target" in req:
        # start-up: archspec (~40 ms) loads only for a cpu.* rule
        from archspec.cpu import TARGETS
        t = TARGETS.get(req.get("cpu.target"))
        if t is not None and t.family.name == "x86_64":
            level = t.generic.name
            if level.startswith("x86_64_v"):
                cpu_terms.append({"feature": "cpu.cpuid",
                                  "matchExpressions": {f"X86_64_{level[7:].upper()}": {"op": "Exists"}}})
            if t.vendor != "generic":
                left_out.append("cpu.target (microarchitecture beyond its level)")
        else:
            left_out.append("cpu.target")
    if "cpu.features" in req:
        cpu_terms.append({"feature": "cpu.cpuid",
                          "matchExpressions": {cpuid_name(f): {"op": "Exists"} for f in req.get("cpu.features")}})
    vendor = req.get("cpu.vendor")
    if vendor is None and "cpu.target" in req:
        # start-up: archspec (~40 ms) loads only for a cpu.* rule
        from archspec.cpu import TARGETS
        t = TARGETS.get(req.get("cpu.target"))
        vendor = t.vendor if t is not None and t.vendor != "generic" else None
    if vendor:
        cpu_terms.append({"feature": "cpu.model",
                          "matchExpressions": {"vendor_id": {"op": "In", "value": [nfd_cpu_vendors().get(vendor, vendor)]}}})
    if cpu_terms:
        rules.append({"name": "compat cpu", "matchFeatures": cpu_terms})
    gpu = req.gpu_vendor
    if gpu and gpu != "none":
        vid, classes = gpu_pci()[gpu]["vendor"], gpu_pci()[gpu]["classes"]
        rules.append({"name": f"compat gpu {gpu}", "matchFeatures": [{
            "feature": "pci.device",
            "matchExpressions": {"vendor": {"op": "In", "value": [vid]}, "class": {"op": "In", "value": classes}}}]})
    fabrics = [f for f in (req.get("fabric") or ()) if f != "tcp"]
    if fabrics and "tcp" not in (req.get("fabric") or ()):
        rules.append({"name": "compat fabric", "matchAny": [{"matchFeatures": fabric_terms(f)} for f in fabrics]})
    if "os.kernel" in req:
        kernel_rules, skipped = _kernel_rules(req.get("os.kernel"))
        rules += kernel_rules
        if skipped:
            left_out.append(f"os.kernel ({', '.join(skipped)})")
    return rules, left_out


def spec_for(annotations: Mapping[str, str], tag: str) -> Dict:
    req = A.parse(annotations)
    rules, left_out = rules_for(req)
    desc = req.get("description") or "generated by compat annotate"
    if left_out:
        desc += "; not expressible in NFD features: " + ", ".join(left_out)
    compat_set = {"tag": tag, "description": desc, "rules": rules}
    if "weight" in req:
        compat_set["weight"] = req.get("weight")
    return {"version": "v1alpha1", "compatibilities": [compat_set]}


def to_yaml(doc) -> bytes:
    """Deterministic YAML (JSON is valid YAML 1.2; NFD decodes with sigs.k8s.io/yaml)."""
    try:
        # start-up: PyYAML (~30 ms) loads only to write a spec
        import yaml
    except ImportError:
        return json.dumps(doc, indent=2, sort_keys=True).encode()
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False).encode()


def artifact(subject: Mapping, annotations: Mapping[str, str], tag: str, created: str) -> Tuple[bytes, bytes]:
    """(spec layer bytes, artifact manifest bytes) attached to ``subject``."""
    layer = to_yaml(spec_for(annotations, tag))
    man = {"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
           "config": dict(EMPTY_CONFIG),
           "layers": [{"mediaType": SPEC_MEDIA_TYPE, "digest": M.digest_of(layer), "size": len(layer)}],
           "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
           "annotations": {CREATED: created}}
    return layer, json.dumps(man, indent=2, sort_keys=True).encode()
