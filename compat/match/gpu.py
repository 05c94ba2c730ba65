"""GPU: vendor, CUDA driver compatibility, SASS/PTX against every host GPU, AMD gfx targets.

Fit (higher is better), compared in this order:

1. architecture fit, the worst over the host's GPUs of that vendor:
   4 exact SASS (``sm_XY``/``sm_XYa`` = host capability) or listed gfx target;
   3 same-major SASS (``sm_XY`` with Y below the host minor, or family ``sm_XYf``);
   2 PTX JIT (``compute_XY`` at or below the host capability);
   1 a GPU image that names no architecture; 0 a CPU-only image.
2. CUDA: 2 the driver supports the image's CUDA natively, 1 minor-version compatibility,
   0 not a CUDA image.
3. the image's CUDA version (newest first).

CUDA rules: NVIDIA's compatibility guide (``compat/data/cuda.json`` holds the driver floors).
"""
from __future__ import annotations


from compat.host.profile import GPU, Host
from compat.match.check import Check, fail, ok, undecided, unknown
from compat.record import Record
from compat.vocab import values as V
from compat.vocab.annotations import Requirements
from compat.vocab.data import load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple, Union

EXACT, SAME_MAJOR, PTX, UNSTATED = 4, 3, 2, 1


def sass_fit(arch_list, cc: str) -> Tuple[int, Optional[str]]:
    """Best fit of an arch list for one GPU of capability ``cc``, and the entry that gives it."""
    major, minor = (int(x) for x in cc.split("."))
    best, which = 0, None
    for a in arch_list:
        fit = 0
        if a.kind == "sm":
            if a.suffix == "a":
                fit = EXACT if (a.major, a.minor) == (major, minor) else 0
            elif a.major == major and a.minor == minor:
                fit = EXACT
            elif a.major == major and a.minor < minor:
                fit = SAME_MAJOR
            elif a.suffix == "f" and a.major == major and a.minor <= minor:
                fit = SAME_MAJOR
        else:  # compute_XY: PTX, JIT-compiled by the driver for any capability at or above XY
            if a.suffix == "a":
                fit = PTX if (a.major, a.minor) == (major, minor) else 0
            elif a.suffix == "f":       # family-specific PTX: JIT-compiled within the family only
                fit = PTX if a.major == major and a.minor <= minor else 0
            elif (a.major, a.minor) <= (major, minor):
                fit = PTX
        if fit > best:
            best, which = fit, str(a)
    return best, which


def _need_text(cc: str) -> str:
    major, minor = cc.split(".")
    return f"needs sm_{major}{minor} SASS (or sm_{major}y, y <= {minor}) or compute_XY <= {major}{minor} PTX"


def cuda_fit(image_cuda: str, gpu: GPU) -> Tuple[int, str]:
    """(2 native | 1 minor-version compatible | 0 incompatible, reason)."""
    host = V.version_tuple(gpu.cuda) if gpu.cuda else None
    want = V.version_tuple(image_cuda)
    if host is None:
        return -1, "unknown: gpu.cuda.version (the driver's CUDA; --assume gpu.cuda.version=...)"
    if host >= want:
        return 2, f"CUDA {image_cuda} <= driver's {gpu.cuda}"
    if host[0] == want[0]:
        floor = load_data("cuda")["minor_version_floor"].get(str(want[0]))
        if floor and gpu.driver and V.version_tuple(gpu.driver) < V.version_tuple(floor):
            return 0, f"needs CUDA {image_cuda}; driver {gpu.driver} is below the {want[0]}.x floor {floor}"
        return 1, (f"CUDA {image_cuda} on a CUDA {gpu.cuda} driver: minor-version compatibility "
                   f"(limited features, no newer PTX JIT)")
    return 0, f"needs CUDA {image_cuda}; host driver {gpu.driver or ''} supports CUDA {gpu.cuda}".replace("  ", " ")


def check(req: Requirements, host: Host) -> Check:
    vendor = req.gpu_vendor
    if vendor is None or vendor == "none":
        return ok("gpu", "CPU only" if vendor == "none" or not host.gpus else "CPU only (host GPUs unused)",
                  (0, 0, ()))
    gpus = host.gpus_of(vendor)
    if gpus is None:
        return unknown("gpu", "gpu.vendor", f"GPUs could not be detected; --assume gpu.vendor={vendor}")
    if not gpus:
        name = {"nvidia": "an NVIDIA", "amd": "an AMD", "intel": "an Intel"}[vendor]
        return fail("gpu", f"needs {name} GPU; host has none")
    fit = _VENDOR_KEYS.get(vendor, _amd)(req, gpus)
    if isinstance(fit, Check):
        return fit
    count = f"{len(gpus)}x " if len(gpus) > 1 else ""
    reason = f"{count}{vendor} " + ("; ".join(fit.reasons) if fit.reasons else "GPU present")
    return ok("gpu", reason, (fit.arch, fit.cuda, fit.cuda_version), note="; ".join(fit.notes))


class _Fit(Record):
    """What a vendor's keys say of a host whose GPUs pass them."""
    arch: int = UNSTATED
    cuda: int = 0                 # 2 native, 1 minor-version compatible, 0 not stated
    cuda_version: Tuple = ()
    reasons: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()


def _nvidia(req: Requirements, gpus) -> Union[Check, _Fit]:
    """gpu.cuda.version against the driver, gpu.cuda.arch against each GPU's capability."""
    fit = _Fit()
    if "gpu.cuda.version" in req:
        image_cuda = req.get("gpu.cuda.version")
        flag, why = cuda_fit(image_cuda, gpus[0])
        if flag < 0:
            return undecided("gpu", why)
        if flag == 0:
            return fail("gpu", why)
        dropped = load_data("cuda")["dropped_sass_majors"].get(image_cuda.split(".")[0], [])
        old = [g for g in gpus if g.cc in dropped]
        if old:
            return fail("gpu", f"CUDA {image_cuda} cannot build code for compute capability {old[0].cc} "
                               f"(host GPU {old[0].index})")
        fit = fit._replace(cuda=flag, cuda_version=V.version_tuple(image_cuda),
                           **({"notes": (why,)} if flag == 1 else {"reasons": (why,)}))
    if "gpu.cuda.arch" in req:
        arches = req.get("gpu.cuda.arch")
        worst = EXACT
        picks = []
        for g in gpus:
            if g.cc is None:
                return unknown("gpu", "gpu.cc", f"compute capability of GPU {g.index}; --assume gpu.cc=M.m")
            arch_fit, which = sass_fit(arches, g.cc)
            if arch_fit == 0:
                have = ",".join(str(a) for a in arches)
                return fail("gpu", f"{_need_text(g.cc)}; host GPU {g.index} is {g.cc}, image has {have}")
            worst = min(worst, arch_fit)
            picks.append(which)
        label = {EXACT: "exact SASS", SAME_MAJOR: "same-major SASS", PTX: "PTX JIT"}[worst]
        fit = fit._replace(arch=worst, reasons=(f"{label} {picks[0]} for cc {gpus[0].cc}",) + fit.reasons)
    return fit


def _amd(req: Requirements, gpus) -> Union[Check, _Fit]:
    """gpu.amd.arch against each GPU's gfx target, gpu.rocm.version against the host's ROCm
    (the keys an AMD GPU, or another vendor's, is asked about)."""
    fit = _Fit()
    if "gpu.amd.arch" in req:
        listed = req.get("gpu.amd.arch")
        for g in gpus:
            if g.gfx is None:
                return unknown("gpu", "gpu.amd.arch", f"gfx target of GPU {g.index}; --assume gpu.amd.arch=gfx90a")
            if g.gfx not in listed:
                return fail("gpu", f"host GPU {g.index} is {g.gfx}; image has {','.join(listed)}")
        fit = fit._replace(arch=EXACT, reasons=(f"{gpus[0].gfx} listed",))
    if "gpu.rocm.version" in req:
        want = req.get("gpu.rocm.version")
        have = gpus[0].rocm
        if have is None:
            return unknown("gpu", "gpu.rocm.version")
        if V.version_tuple(have) < V.version_tuple(want):
            return fail("gpu", f"needs ROCm {want}; host has {have}")
        fit = fit._replace(reasons=fit.reasons + (f"ROCm {want} <= {have}",))
    return fit


#: the keys each vendor's GPUs are checked against
_VENDOR_KEYS = {"nvidia": _nvidia, "amd": _amd}
