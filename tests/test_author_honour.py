"""Authoring refuses what selection cannot honour: a value ``select`` would call unknown, or
that excludes its variant on every host, is an error at ``annotate`` (exit 2, nothing pushed)
and at ``validate`` (exit 1), with the key named and, for CPU targets, a suggestion taken
from archspec's names and its compilers' spellings."""
import json
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import FIXTURES, run_compat

sys.path.insert(0, FIXTURES)
from build_demo import build_variant_images  # noqa: E402

P = "org.hpc-compat."
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("honour")
    build_variant_images(str(d / "src"))
    return str(d / "src")


def write_index(tmp_path, *descs, annotations=None):
    manifests = []
    for n, (platform, ann) in enumerate(descs, 1):
        d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + f"{n:x}" * 64,
             "size": 10}
        if platform is not None:
            d["platform"] = platform
        if ann:
            d["annotations"] = {(k if k.startswith(("org.", "vnd.")) else P + k): v for k, v in ann.items()}
        manifests.append(d)
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
    if annotations:
        doc["annotations"] = annotations
    f = tmp_path / "index.json"
    f.write_text(json.dumps(doc))
    return str(f)


# -- through the CLI, as a user types it ---------------------------------------------------

@pytest.mark.parametrize("value,suggestion", [
    ("zen99", "did you mean 'zen' or 'zen6' or 'zen5'?"),
    ("znver4", "did you mean 'zen4'? 'znver4' is the compiler's spelling"),
    ("skylake-avx512", "did you mean 'skylake_avx512'?"),
    ("x86-64-v3", "did you mean 'x86_64_v3'?"),
])
def test_unknown_cpu_target_is_refused_at_annotate_with_a_suggestion(src, tmp_path, value, suggestion):
    proc = run_compat("annotate", f"oci:{tmp_path}/app:1", "--variant", f"oci:{src}:generic",
                      "--variant", f"oci:{src}:zen4", f"cpu.target={value}")
    assert proc.returncode == 1
    assert f"compat: error: #2 (oci:{src}:zen4): {P}cpu.target: {value!r} is not a microarchitecture " \
           "archspec knows" in proc.stderr
    assert suggestion in proc.stderr
    assert "nothing was pushed" in proc.stderr and "Traceback" not in proc.stderr
    assert not os.path.exists(tmp_path / "app" / "index.json")


def test_unknown_cpu_target_is_refused_at_rewrite(src, tmp_path):
    ref = f"oci:{tmp_path}/app:1"
    run_compat("annotate", ref, "--variant", f"oci:{src}:generic", "--variant", f"oci:{src}:zen4",
               "cpu.target=zen4", check=0)
    proc = run_compat("annotate", ref, "--set", "#2", "cpu.target=znver4")
    assert proc.returncode == 1 and "did you mean 'zen4'?" in proc.stderr


def test_unknown_cpu_target_is_an_error_at_validate(tmp_path):
    f = write_index(tmp_path, (AMD64, {}), (AMD64, {"cpu.target": "zen99"}))
    proc = run_compat("validate", f)
    assert proc.returncode == 1
    assert f"error: #2 (sha256:222222222222): {P}cpu.target: 'zen99' is not a microarchitecture" in proc.stdout


def test_unknown_cpu_target_in_a_variants_file_is_an_error_at_validate(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("variants:\n  - ref: r/a:1\n  - ref: r/a:2\n    annotations: {cpu.target: znver4}\n")
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1 and "error: #2 (r/a:2): " in proc.stdout and "did you mean 'zen4'?" in proc.stdout


# Each rule: (platform, annotations, level, message fragment). The rules mirror compat/match/.
RULES = [
    (AMD64, {"cpu.target": "a64fx"}, "error", "a64fx is a microarchitecture of the aarch64 family; this descriptor's platform is amd64"),
    (ARM64, {"cpu.target": "zen4"}, "error", "zen4 is a microarchitecture of the x86_64 family"),
    (AMD64, {"cpu.target": "zen4", "cpu.vendor": "GenuineIntel"}, "error", "'GenuineIntel' contradicts org.hpc-compat.cpu.target zen4 (made by AuthenticAMD)"),
    (AMD64, {"cpu.vendor": "ARM"}, "error", "ARM makes no x86_64 CPUs archspec knows"),
    (AMD64, {"cpu.vendor": "GenuineIntle"}, "warning", "did you mean 'GenuineIntel'?"),
    (AMD64, {"cpu.features": "avx2,sve"}, "error", "'sve' exists only on aarch64 CPUs (archspec); no amd64 host has it"),
    (ARM64, {"cpu.features": "avx512f"}, "error", "'avx512f' exists only on x86_64 CPUs"),
    (AMD64, {"cpu.features": "avx513"}, "warning", "no archspec microarchitecture has 'avx513'"),
    (AMD64, {"gpu.cuda.version": "13.0", "gpu.cuda.arch": "sm_70,sm_90"}, "error", "CUDA 13.0 cannot build sm_70"),
    (AMD64, {"mpi.implementation": "none", "mpi.mode": "bind"}, "error", "'none' (the image has no MPI) contradicts org.hpc-compat.mpi.mode"),
    (AMD64, {"os.kernel": ">=6,<5"}, "error", "no kernel release X.Y.Z satisfies"),
    (AMD64, {"os.kernel": "===6.1.0-18-amd64"}, "error", "no kernel release X.Y.Z satisfies"),
    (dict(AMD64, variant="v5"), {"cpu.target": "zen4"}, "error", "platform variant 'v5': amd64 variants are the x86-64 levels"),
    (dict(ARM64, variant="v7"), {}, "error", "malformed descriptor: platform.variant 'v7' is not an Arm level"),
    (dict(AMD64, features=["avx2", "avx9000"]), {}, "error", "platform features avx9000: unknown for amd64"),
    (AMD64, {"org.supercontainers.hardware.gpu.available": "yes"}, "warning", "no compat equivalent (ignored): selection does not read it"),
]


@pytest.mark.parametrize("platform,ann,level,fragment", RULES, ids=[r[3][:40] for r in RULES])
def test_what_selection_cannot_honour_is_reported_by_validate(tmp_path, platform, ann, level, fragment):
    f = write_index(tmp_path, (AMD64, {}), (platform, ann))
    proc = run_compat("validate", f)
    assert proc.returncode == 1, proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(f"{level}: #2 (sha256:222222222222): ")]
    assert any(fragment in ln for ln in lines), proc.stdout


def test_what_selection_cannot_honour_stops_annotate(src, tmp_path):
    proc = run_compat("annotate", f"oci:{tmp_path}/app:1", "--variant", f"oci:{src}:generic",
                      "--variant", f"oci:{src}:zen4", "cpu.target=a64fx")
    assert proc.returncode == 1 and "a64fx is a microarchitecture of the aarch64 family" in proc.stderr
    assert not os.path.exists(tmp_path / "app" / "index.json")


def test_keys_selection_never_reads_are_errors(tmp_path):
    attestation = {"os": "unknown", "architecture": "unknown"}
    f = write_index(tmp_path, (AMD64, {}), (attestation, {"cpu.target": "zen4"}),
                    annotations={P + "cpu.target": "zen4"})
    proc = run_compat("validate", f)
    assert proc.returncode == 1
    assert "error: index: org.hpc-compat.cpu.target: never read: selection reads the annotations of each" in proc.stdout
    assert "error: #2 (sha256:222222222222): org.hpc-compat.cpu.target: never read: selection skips this entry" \
        in proc.stdout


def test_index_level_compat_keys_in_a_variants_file_stop_annotate(src, tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text(f"index: oci:{tmp_path}/app:1\nannotations: {{{P}cpu.target: zen4}}\n"
                 f"variants:\n  - ref: oci:{src}:generic\n")
    proc = run_compat("annotate", "--variants", str(f))
    assert proc.returncode == 1 and "error: index: org.hpc-compat.cpu.target: never read" in proc.stderr


def test_a_clean_demo_index_stays_clean():
    """Every value the demo index uses is one selection honours: no false alarm."""
    proc = run_compat("validate", f"oci:{os.path.join(FIXTURES, 'demo')}")
    assert proc.returncode == 0, proc.stdout


# -- the same mechanism as selection: property tests ------------------------------------------

def _names():
    from archspec.cpu import TARGETS
    from compat.author.honour import compiler_names
    return sorted(TARGETS) + sorted(compiler_names()) + ["zen99", "x86-64-v9", "Zen4", " zen4 ", "sm_90"]


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(_names()), arch=st.sampled_from(["amd64", "arm64", "ppc64le", "riscv64"]))
def test_cpu_target_is_clean_exactly_when_selection_can_choose_it(name, arch):
    """lint reports no error for cpu.target=NAME on ARCH  <=>  select picks that descriptor
    for a host of that very microarchitecture (the most favourable host there is)."""
    from archspec.cpu import TARGETS
    from compat import api
    from compat.author import lint
    from compat.host import assume
    from compat.host.profile import Host

    platform = {"os": "linux", "architecture": arch}
    errors = [p for p in lint.check_annotations({P + "cpu.target": name}, "#1", platform) if p.level == "error"]
    target = name.strip().lower()
    hosts = [target] if target in TARGETS else ["zen4", "neoverse_v2", "power9le", "u74mc"]
    chosen = False
    for h in hosts:
        host = assume.apply(Host(), assume.parse({"cpu.target": h}))     # its own architecture
        index = {"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64,
             "size": 1, "platform": platform, "annotations": {P + "cpu.target": name}}]}
        ranking = api.rank(index, host)
        chosen = chosen or ranking.candidates[0].verdict == "compatible"
    assert chosen == (not errors), (name, arch, errors)


def _host_platforms():
    from compat.match.platform import Platform
    out = [Platform("linux", "amd64", v) for v in ("", "v2", "v3", "v4")]
    out += [Platform("linux", "arm64", v) for v in [""] + [f"v8.{i}" for i in range(1, 10)] + [f"v9.{i}" for i in range(10)] + ["v9"]]
    return out


def _accepted_somewhere(desc):
    from compat.match import platform as platform_m
    accepted = False
    for host in _host_platforms():
        try:
            accepted = accepted or platform_m.check(desc, host).ok
        except ValueError:          # selection's own parser trips on it: not accepted
            pass
    return accepted


WELL_FORMED = ["", "v1", "v2", "v3", "v4", "v5", "v8", "8", "v8.0", "v8.2", "8.2", "9", "v9", "v9.3", "v10", "v7", "V3"]


@settings(max_examples=80, deadline=None, derandomize=True)
@given(arch=st.sampled_from(["amd64", "arm64", "x86_64", "aarch64"]), variant=st.sampled_from(WELL_FORMED))
def test_platform_variant_is_clean_exactly_when_some_host_platform_accepts_it(arch, variant):
    from compat.author.honour import platform_problems

    desc = {"os": "linux", "architecture": arch, "variant": variant}
    assert _accepted_somewhere(desc) == (not platform_problems(desc)), (arch, variant)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(arch=st.sampled_from(["amd64", "arm64"]), variant=st.text("vV0123456789.-x", max_size=6))
def test_platform_variant_no_host_accepts_is_an_error(arch, variant):
    """Any spelling no host platform accepts is an error (authoring may be stricter than the
    filter's leniency: ``v0`` or ``00`` are errors even where the filter reads a number)."""
    from compat.author.honour import platform_problems

    desc = {"os": "linux", "architecture": arch, "variant": variant}
    if not _accepted_somewhere(desc):
        assert platform_problems(desc), (arch, variant)


_clause = st.tuples(st.sampled_from(["==", "!=", ">=", "<=", ">", "<", "~="]),
                    st.lists(st.integers(0, 4), min_size=1, max_size=3), st.booleans())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(clauses=st.lists(_clause, min_size=1, max_size=4))
def test_kernel_specifier_is_clean_exactly_when_some_release_satisfies_it(clauses):
    """Against selection's own kernel check over every release X.Y.Z with X, Y, Z in 0..6."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from compat.author import honour
    from compat.host.profile import Host
    from compat.match import kernel
    from compat.vocab import annotations as A

    parts = []
    for op, nums, star in clauses:
        if op == "~=" and len(nums) < 2:
            nums = nums + [0]
        wild = ".*" if star and op in ("==", "!=") else ""
        parts.append(f"{op}{'.'.join(map(str, nums))}{wild}")
    text = ",".join(parts)
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return
    req = A.parse({P + "os.kernel": text})
    assert not req.errors
    flagged = bool(honour._kernel(req))
    host = Host()
    somewhere = any(kernel.check(req, host._replace(os=host.os._replace(kernel=f"{x}.{y}.{z}"))).ok
                    for x in range(7) for y in range(7) for z in range(7))
    assert flagged == (not somewhere), text


def test_problems_escape_the_index_text_they_quote(tmp_path):
    f = write_index(tmp_path, ({"os": "linux", "architecture": "amd64"}, {}),
                    ({"os": "linux", "architecture": "amd64"}, {"org.hpc-compat.\x1b[2Jx": "1",
                                                               "cpu.target": "zen\x1b]0;owned\x07"}))
    proc = run_compat("validate", f)
    assert proc.returncode == 1 and "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "org.hpc-compat.\\x1b[2Jx: unknown key" in proc.stdout
    v = tmp_path / "v.yaml"
    v.write_text('variants:\n  - ref: "r/a:1\\e[2J"\n    annotations: {"cpu.target\\e[2J": "zen4"}\n')
    proc = run_compat("validate", str(v))
    assert proc.returncode == 1 and "\x1b" not in proc.stdout, proc.stdout
    assert "error: #1 (r/a:1\\x1b[2J): org.hpc-compat.cpu.target\\x1b[2J: unknown key" in proc.stdout


def test_variants_file_problems_escape_the_text_they_quote(src, tmp_path):
    v = tmp_path / "v.yaml"
    v.write_text(f'variants:\n  - ref: "oci:{src}:generic"\n    annotations: {{"description\\e[2J": yes}}\n')
    proc = run_compat("annotate", "oci:" + str(tmp_path / "o") + ":1", "--variants", str(v))
    assert proc.returncode == 1 and "\x1b" not in proc.stderr, proc.stderr
    assert "org.hpc-compat.description\\x1b[2J: read as the boolean true" in proc.stderr


def test_compat_keys_on_an_entry_without_platform_are_never_read(tmp_path):
    f = write_index(tmp_path, (AMD64, {}), (None, {"cpu.target": "zen4"}), (None, {}))
    out = run_compat("validate", f).stdout
    assert "error: #2 (sha256:222222222222): org.hpc-compat.cpu.target: never read: compat selects no entry " \
           "without a platform" in out
    assert "error: #3" not in out and "warning: #3 (sha256:333333333333): no platform" in out


_CPU_HOSTS = {}


def _cpu_hosts(family):
    """Every host archspec can describe in ``family``: each microarchitecture, with its own
    vendor (a generic level: with each vendor of that family)."""
    if family not in _CPU_HOSTS:
        from archspec.cpu import TARGETS
        from compat.host import assume
        from compat.host.profile import Host

        vendors = sorted({t.vendor for t in TARGETS.values() if t.family.name == family} - {"generic"}) or ["generic"]
        hosts = []
        for t in TARGETS.values():
            if t.family.name != family:
                continue
            for v in ([t.vendor] if t.vendor != "generic" else vendors):
                hosts.append(assume.apply(Host(), assume.parse({"cpu.target": t.name, "cpu.vendor": v})))
        _CPU_HOSTS[family] = hosts
    return _CPU_HOSTS[family]


_X86 = ["avx2", "avx512f", "avx512_bf16", "amx_tile", "sha_ni", "sse3", "avx512", "fma"]
_ARM = ["sve", "sve2", "asimd", "neon", "sha3", "fma"]


@settings(max_examples=160, deadline=None, derandomize=True)
@given(arch=st.sampled_from(["amd64", "arm64"]),
       target=st.sampled_from([None, None, "x86_64_v3", "zen2", "zen4", "icelake", "sapphirerapids", "neoverse_n1",
                               "a64fx", "neoverse_v2"]),
       vendor=st.sampled_from([None, None, None, "GenuineIntel", "AuthenticAMD", "ARM", "Fujitsu", "Foo"]),
       features=st.one_of(st.lists(st.sampled_from(_X86), max_size=2, unique=True),
                          st.lists(st.sampled_from(_ARM), max_size=2, unique=True),
                          st.lists(st.sampled_from(_X86 + _ARM + ["bogus"]), max_size=3, unique=True)))
def test_cpu_keys_are_clean_exactly_when_some_archspec_host_passes_selection(arch, target, vendor, features):
    """No error and no warning for the CPU keys  <=>  selection's CPU check passes for some
    host archspec can describe on that platform."""
    from compat.author import honour
    from compat.vocab.data import arch_families
    from compat.match import cpu as cpu_m
    from compat.vocab import annotations as A

    ann = {P + "cpu.target": target, P + "cpu.vendor": vendor, P + "cpu.features": ",".join(features)}
    ann = {k: v for k, v in ann.items() if v}
    req = A.parse(ann)
    assert not req.errors
    flagged = honour.problems(ann, {"os": "linux", "architecture": arch}, req)
    passes = any(cpu_m.check(req, h).ok for h in _cpu_hosts(arch_families()[arch]))
    assert passes == (not flagged), (ann, arch, flagged)


def test_index_level_compat_keys_in_a_variants_file_are_an_error_at_validate(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text(f"annotations: {{{P}weight: '3'}}\nvariants:\n  - ref: r/a:1\n")
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1
    assert "error: index annotations: org.hpc-compat.weight: never read" in proc.stdout


@pytest.mark.skipif(__import__("registry_harness").DISTRIBUTION is None, reason="docker-registry not installed")
def test_registry_index_with_an_unknown_target_fails_validate_and_cannot_be_rewritten_into_another(src, tmp_path):
    """The reported case end to end on a real registry: an index someone pushed with
    cpu.target=zen99 (select: unknown to archspec) is an error for validate, and a rewrite
    that would push another unknown name stops before pushing."""
    import hashlib
    from registry_harness import RunningRegistry, push_layout

    layout = tmp_path / "app"
    run_compat("annotate", f"oci:{layout}:1", "--variant", f"oci:{src}:generic", "--variant", f"oci:{src}:zen4",
               "cpu.target=zen4", check=0)
    top = json.loads((layout / "index.json").read_text())
    blob = layout / "blobs" / "sha256" / top["manifests"][0]["digest"][7:]
    data = blob.read_bytes().replace(b'"zen4"', b'"zen99"')
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    top["manifests"][0].update(digest=digest, size=len(data))
    (layout / "index.json").write_text(json.dumps(top))
    reg = RunningRegistry(tmp_path / "reg")
    try:
        push_layout(str(layout), reg.host, "hpc/app", "1")
        ref = f"{reg.host}/hpc/app:1"
        explain = run_compat("select", ref, "--explain", "--assume", "cpu.target=zen4", check=0).stdout
        assert "'zen99' is not a microarchitecture this archspec knows" in explain     # what select says
        proc = run_compat("validate", ref)
        assert proc.returncode == 1 and f"error: #2 (sha256:" in proc.stdout and "'zen99' is not a microarchitecture" \
            " archspec knows" in proc.stdout
        proc = run_compat("annotate", ref, "--set", "#2", "cpu.target=znver4")
        assert proc.returncode == 1 and "did you mean 'zen4'?" in proc.stderr
        assert "'zen99' is not" in run_compat("validate", ref).stdout                    # nothing was pushed
        fixed = run_compat("annotate", ref, "--set", "#2", "cpu.target=zen4", check=0).stdout.strip()
        assert fixed.startswith("sha256:") and run_compat("validate", ref).returncode == 0
    finally:
        reg.stop()


def test_every_current_compiler_spelling_in_archspec_gets_a_suggestion():
    """archspec's own data as the test vectors: every -march/-mcpu name a current compiler
    entry gives a microarchitecture (microarchitectures.json, ``compilers``) is suggested back
    as a target that compiler entry belongs to, or as archspec's underscore spelling of it."""
    import re as _re
    from archspec.cpu import TARGETS
    from archspec.cpu.schema import TARGETS_JSON
    from compat.author.honour import target_problem

    checked = 0
    for name, info in TARGETS_JSON["microarchitectures"].items():
        for compiler, entries in (info.get("compilers") or {}).items():
            for entry in entries:
                if not str(entry.get("versions", "")).endswith(":") or not entry.get("name"):
                    continue
                spelled = entry["name"].lower()
                if spelled in TARGETS:
                    continue                        # a target name in its own right
                message = target_problem(spelled)
                assert message, spelled
                suggested = _re.findall(r"'([a-z0-9_.]+)'", message.split("did you mean", 1)[1].split("?")[0])
                assert suggested, (spelled, message)
                if spelled.replace("-", "_") in TARGETS:
                    assert suggested == [spelled.replace("-", "_")]
                else:
                    assert all(any(e.get("name", "").lower() == spelled
                                   for es in (TARGETS_JSON["microarchitectures"][s].get("compilers") or {}).values()
                                   for e in es) for s in suggested), (spelled, suggested)
                checked += 1
    assert checked > 50
