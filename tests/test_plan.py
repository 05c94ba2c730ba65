"""compat plan: inventory, classes, batch ranking, output, Slurm features and constraints
(issue 14 items 1-4). Node profiles come from the real sysroot captures in fixtures/hosts."""
import json
import os
import shutil
import tarfile

import pytest
from hypothesis import given, settings, strategies as st

from cli_support import assert_valid, cli
from conftest import FIXTURES, HOSTS
from helpers import run_hostile

DEMO = "oci:" + os.path.join(FIXTURES, "demo")
KINDS = sorted(d for d in os.listdir(HOSTS) if os.path.isdir(os.path.join(HOSTS, d)))


@pytest.fixture(scope="module")
def profiles():
    """kind -> compat detect --json of that capture (a real detection, not a hand-written profile)."""
    import compat.host
    return {k: compat.host.detect(sysroot=os.path.join(HOSTS, k)).to_dict() for k in KINDS}


@pytest.fixture()
def node_dir(tmp_path, profiles):
    """A directory inventory: 3 nodes of each kind, named <kind-prefix>NN.json."""
    d = tmp_path / "nodes"
    d.mkdir()
    for i, k in enumerate(KINDS):
        for n in range(1, 4):
            doc = dict(profiles[k], sources=dict(profiles[k]["sources"], node=f"n{i}{n}"))   # sources differ
            (d / f"{k[:4]}{n:02d}.json").write_text(json.dumps(doc))
    return d


# -- 1. hostlists -----------------------------------------------------------------------------

def test_hostlist_slurm_examples():
    from compat.plan.hostlist import compress, expand
    assert expand("gpu[001-003,7],login1") == ["gpu001", "gpu002", "gpu003", "gpu7", "login1"]
    assert expand("a[1-2]b,c") == ["a1b", "a2b", "c"]
    assert compress(["gpu003", "gpu001", "gpu002", "gpu010", "login1"]) == "gpu[001-003,010],login[1]" \
        or compress(["gpu003", "gpu001", "gpu002", "gpu010", "login1"]) == "gpu[001-003,010],login1"
    assert compress(["n1", "n2", "n3"]) == "n[1-3]"
    long = "n" + "7" * 5000                      # beyond int()'s digit limit: kept as a name
    assert compress([long, "n1"]) == f"n1,{long}"


@pytest.mark.parametrize("bad", ["a[1-", "a]", "a[x]", "a[3-1]", "a[[1]]", "a[1][2]", "n[0-99999999]"])
def test_hostlist_malformed_is_bad_input(bad):
    from compat.errors import BadInput
    from compat.plan.hostlist import expand
    with pytest.raises(BadInput):
        expand(bad)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sets(st.tuples(st.sampled_from(["gpu", "cn", "x-", ""]), st.integers(0, 300),
                         st.sampled_from([1, 3]))).filter(lambda s: all(p or w == 1 for p, _, w in s)))
def test_hostlist_round_trip(spec):
    from compat.plan.hostlist import compress, expand
    names = {f"{p}{str(n).zfill(w)}" for p, n, w in spec}
    assert set(expand(compress(names))) == names


# -- 1. inventory and classes ---------------------------------------------------------------

def test_classes_ignore_sources_and_group_kinds(node_dir):
    from compat.plan.inventory import read
    classes = read([str(node_dir)]).classes()
    assert len(classes) == len(KINDS)
    assert sorted(len(c.nodes) for c in classes) == [3] * len(KINDS)
    assert any(c.hostlist == "nvid[01-03]" for c in classes)


def test_class_key_separates_what_matching_reads(profiles):
    import compat.host
    from compat.plan.classes import class_key
    h = compat.host.from_data(profiles["nvidia-4xh100-nonvml"], "x")
    same = h._replace(sources={"other": "x"}, gpus=tuple(g._replace(memory_mib=1) for g in h.gpus))
    other = h._replace(gpus=tuple(g._replace(cc="8.0") for g in h.gpus))
    assert class_key(h) == class_key(same) and hash(class_key(h)) == hash(class_key(same))
    assert class_key(h) != class_key(other)


def test_mapping_tarball_and_slurm_sources(tmp_path, profiles, node_dir):
    from compat.plan.inventory import read
    (tmp_path / "h100.json").write_text(json.dumps(profiles["nvidia-4xh100-nonvml"]))
    (tmp_path / "map.yaml").write_text("gpu[001-064]: h100.json\ncpu[1-2]: missing.json\n")
    tar = tmp_path / "nodes.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(node_dir, arcname="nodes")
    (tmp_path / "sinfo.txt").write_text("gpu[001-002] gpu* f1,f2\ngpu003 debug (null)\nlogin9 debug (null)\n")
    inv = read([str(tmp_path / "map.yaml"), str(tar), str(tmp_path / "sinfo.txt")])
    assert len(inv.hosts) == 64 + 3 * len(KINDS)
    assert "cpu1" in inv.problems and "missing.json" in inv.problems["cpu1"]
    assert inv.partition_nodes("gpu") == ["gpu001", "gpu002"]
    assert inv.features["gpu001"] == ("f1", "f2")
    assert "no profile" in inv.problems["login9"]
    scontrol = {"meta": {}, "nodes": [{"name": "gpu005", "partitions": ["gpu"], "features": "a,b"},
                                      {"name": "gpu006", "partitions": ["gpu", "debug"], "active_features": ["c"]}]}
    (tmp_path / "sc.json").write_text(json.dumps(scontrol))
    inv = read([str(tmp_path / "map.yaml"), str(tmp_path / "sc.json")])
    assert inv.partition_nodes("debug") == ["gpu006"] and inv.features["gpu005"] == ("a", "b")


def test_nfd_nodefeaturelist(tmp_path):
    from compat.plan.inventory import read
    def nf(name, cc):
        return {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature",
                "metadata": {"name": f"{name}-abc", "labels": {"nfd.node.kubernetes.io/node-name": name}},
                "spec": {"features": {"flags": {"cpu.cpuid": {"elements": {"AVX2": {}, "X86_64_V3": {}}}},
                                      "attributes": {"local.feature": {"elements": {
                                          "hpc-compat.org/gpu.nvidia.count": "2", "hpc-compat.org/gpu.cc": cc,
                                          "hpc-compat.org/os.arch": "amd64"}}}}}}
    doc = {"apiVersion": "v1", "kind": "NodeFeatureList",
           "items": [nf("k1", "9.0"), nf("k2", "9.0"), nf("k3", "8.0")]}
    (tmp_path / "nf.json").write_text(json.dumps(doc))
    inv = read([str(tmp_path / "nf.json")])
    assert sorted(inv.hosts) == ["k1", "k2", "k3"]
    assert sorted(c.hostlist for c in inv.classes()) == ["k3", "k[1-2]"]


def test_identical_profiles_parsed_once(tmp_path, profiles, monkeypatch):
    import compat.host
    from compat.plan.inventory import read
    calls = []
    real = compat.host.from_data
    monkeypatch.setattr(compat.host, "from_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    d = tmp_path / "same"
    d.mkdir()
    for n in range(200):
        (d / f"cn{n:03d}.json").write_text(json.dumps(profiles["ib-hdr-zen4"]))
    assert len(read([str(d)]).hosts) == 200 and len(calls) == 1


# -- 2. batch ranking: the same answer as one select per node -----------------------------------

def test_plan_equals_select_per_node(node_dir):
    import compat
    from compat.plan.inventory import read
    inv = read([str(node_dir)])
    p = compat.plan(DEMO, inv)
    assert len(p.classes) == len(KINDS)
    for node, host in inv.hosts.items():
        ranking = compat.resolve(DEMO, host=host, referrers=False).ranking
        got = p.for_node(node)
        assert (got.digest if got else None) == (ranking.best.digest if ranking.best else None), node
        assert [c.digest for c in p.ranking_for_node(node).candidates] == [c.digest for c in ranking.candidates]


def test_plan_api_takes_index_dict_and_host_mapping(profiles):
    import compat
    import compat.host
    hosts = {f"z{i}": compat.host.from_data(profiles["ib-hdr-zen4"], "x") for i in range(5)}
    index = _demo_index()
    p = compat.plan(index, hosts)
    assert len(p.classes) == 1 and p.classes[0].hostlist == "z[0-4]"
    assert p.for_node("z3").digest == compat.rank(index, hosts["z3"]).best.digest
    assert p.images[0].pinned("c1") == p.for_node("z0").digest     # no reference: the digest


def _demo_index():
    from compat.oci.digest import blob_path
    with open(os.path.join(FIXTURES, "demo", "index.json")) as f:
        top = json.load(f)
    d = top["manifests"][0]["digest"]
    with open(blob_path(os.path.join(FIXTURES, "demo"), d, "demo index")) as f:
        return json.load(f)


# -- 3. output --------------------------------------------------------------------------------

def test_cli_text_json_matrix(capsys, node_dir):
    code, out, _ = cli(capsys, "plan", DEMO, "--nodes", str(node_dir))
    assert code == 0 and "class c1" in out and "pinned oci:" in out and "--constraint=" in out
    code, out, _ = cli(capsys, "plan", DEMO, DEMO, "--nodes", str(node_dir), "--json")
    doc = json.loads(out)
    assert_valid(doc, "plan")
    assert len(doc["images"]) == 2 and len(doc["classes"]) == len(KINDS)
    none = [c for c in doc["images"][0]["classes"] if c["selected"] is None]
    assert all(c["reason"] for c in none)
    code, out, _ = cli(capsys, "plan", DEMO, "--nodes", str(node_dir), "--matrix")
    assert code == 0 and out.splitlines()[0].startswith("image") and f"c{len(KINDS)} (3)" in out.splitlines()[0]


def test_cli_output_options_that_disagree(capsys, node_dir):
    code, _, err = cli(capsys, "plan", DEMO, "--nodes", str(node_dir), "--json", "--format", "slurm-conf")
    assert code == 2 and "give one" in err
    code, out, _ = cli(capsys, "plan", DEMO, "--nodes", str(node_dir), "--json", "--format", "json")
    assert code == 0 and json.loads(out)["schema"] == "compat.plan/v1"


def test_cli_excludes_a_broken_profile_and_plans_the_rest(capsys, node_dir):
    (node_dir / "bad01.json").write_text('{"schema": "compat.host/v1", "gpus": "many"}')
    (node_dir / "bad02.json").write_bytes(b"\xff\xfe")
    code, out, _ = cli(capsys, "plan", DEMO, "--nodes", str(node_dir), "--json")
    doc = json.loads(out)
    assert code == 0 and {e["node"] for e in doc["excluded"]} == {"bad01", "bad02"}
    assert sum(c["count"] for c in doc["classes"]) == 3 * len(KINDS)


@pytest.mark.parametrize("content", [b"", b"[1,2]", b"{\"a[1-\": \"x\"}", b"\x00" * 100, b"n[0-999999999] p f\n",
                                     b"a: &a [*a]\n", b"kind: NodeFeatureList\nitems: 3\n"])
def test_hostile_inventory_exit_contract(tmp_path, content):
    f = tmp_path / "inv"
    f.write_bytes(content)
    proc = run_hostile("plan", DEMO, "--nodes", str(f))
    assert proc.returncode == 2


def test_html_in_headless_chromium(tmp_path, node_dir):
    import subprocess
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium is not installed (Debian package chromium; ./dev setup installs it)")
    page = tmp_path / "plan.html"
    rv = json.loads((node_dir / "lapt01.json").read_text())        # a node type no variant runs on
    rv["os"]["arch"], rv["os"]["variant"], rv["cpu"] = "riscv64", None, {"family": "riscv64"}
    (node_dir / "rv01.json").write_text(json.dumps(rv))
    from compat.cli.main import main
    assert main(["plan", DEMO, "--nodes", str(node_dir), "--html", str(page), "-q"]) == 0
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           f"file://{page}"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or "<table" not in proc.stdout:
        pytest.skip(f"chromium could not run headless here: {proc.stderr.strip()[-300:]}")
    dom = proc.stdout
    assert dom.count('<td class="ok"') == len(KINDS) and dom.count('<td class="none"') == 1
    assert 'title="sha256:' in dom and "riscv64" in dom          # the reason, shown on hover
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1600,500", f"file://{page}"], capture_output=True,
                   timeout=60)
    colours = _png_colours(shot.read_bytes())
    from compat.plan.render import _COLOURS
    ok = tuple(int(_COLOURS["ok"][i:i + 2], 16) for i in (1, 3, 5))
    none = tuple(int(_COLOURS["none"][i:i + 2], 16) for i in (1, 3, 5))
    assert colours.get(ok, 0) > 500 and colours.get(none, 0) > 500, \
        sorted(colours.items(), key=lambda kv: -kv[1])[:5]


def _png_colours(data):
    """{(r, g, b): pixel count} of an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes)."""
    import struct
    import zlib
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    width, height, depth, ctype, _, _, interlace = head
    assert depth == 8 and ctype in (2, 6) and interlace == 0, head
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev, counts = zlib.decompress(idat), width * bpp, None, {}
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        prev = prev or bytearray(stride)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            px = tuple(line[x:x + 3])
            counts[px] = counts.get(px, 0) + 1
        prev = line
    return counts


# -- 4. Slurm features and constraints -----------------------------------------------------

def test_detect_slurm_features(capsys):
    code, out, _ = cli(capsys, "detect", "--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"),
                       "--format", "slurm-features")
    feats = out.strip().split(",")
    assert code == 0
    for f in ("arch_amd64", "sapphirerapids", "x86_64_v4", "x86_64_v3", "gpu_nvidia", "gpu_sm_90", "cuda_12.4",
              "ib", "ompi_4.1", "pmix"):
        assert f in feats, (f, feats)
    import re
    assert all(re.fullmatch(r"[a-z0-9_.-]+", f) for f in feats)


def test_slurm_conf_lines(capsys, node_dir):
    code, out, _ = cli(capsys, "plan", DEMO, "--nodes", str(node_dir), "--format", "slurm-conf")
    lines = out.splitlines()
    assert code == 0 and len(lines) == len(KINDS)
    assert all(line.startswith("NodeName=") and " Features=" in line for line in lines)


def test_constraint_selects_exactly_where_variant_is_best(node_dir):
    import compat
    from compat.plan.features import satisfies
    p = compat.plan(DEMO, [str(node_dir)])
    variants = p.variants()
    assert len(variants) >= 2
    for v in variants:
        assert v.constraint is not None, v.constraint_problem
        hit = {n for n, cid in p.node_class.items() if satisfies(p.class_features[cid], v.constraint)}
        assert hit == set(v.nodes), (v.constraint, v.nodes)


def test_constraint_rule_when_features_cannot_separate():
    from compat.plan.features import NoConstraint, constraint, satisfies
    a, b, c = frozenset({"x", "y"}), frozenset({"x", "y", "z"}), frozenset({"w"})
    assert constraint([b], [a, c]) == "z"
    assert satisfies(b, "z") and not satisfies(a, "z")
    assert constraint([c, b], [a]) in ("w|z", "z|w")
    with pytest.raises(NoConstraint):       # positive features cannot exclude a superset
        constraint([a, c], [b])
    assert constraint([a], []) == ""


def test_job_format_for_the_filter(capsys, node_dir, tmp_path):
    code, out, _ = cli(capsys, "plan", DEMO, "--nodes", str(node_dir), "--format", "job")
    kv = dict(line.split("=", 1) for line in out.splitlines())
    assert code == 0 and kv["pinned"].startswith("oci:") and kv["digest"] in kv["pinned"] and "constraint" in kv
    # a partition where nothing fits: exit 3 and the reason per class
    (tmp_path / "sinfo").write_text("rv[1-2] riscv (null)\n")
    prof = json.loads((node_dir / "lapt01.json").read_text())
    prof["os"]["arch"], prof["os"]["variant"] = "riscv64", None
    prof["cpu"] = {"family": "riscv64"}
    (tmp_path / "rv.json").write_text(json.dumps(prof))
    (tmp_path / "map.json").write_text(json.dumps({"rv[1-2]": "rv.json"}))
    code, out, err = cli(capsys, "plan", DEMO, "--nodes", str(tmp_path / "map.json"), "--nodes",
                         str(tmp_path / "sinfo"), "--partition", "riscv", "--format", "job")
    assert code == 3 and out == "" and "no variant of" in err and "rv[1-2]" in err and "riscv64" in err


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.text(alphabet="gpu0123-[],* \n:{}\"\tab.", max_size=60))
def test_inventory_text_never_crashes(tmp_path_factory, text):
    """Any inventory file is an inventory or bad input (one message), never another exception."""
    from compat.errors import BadInput
    from compat.plan.inventory import read
    f = tmp_path_factory.mktemp("inv") / "inv.txt"
    f.write_text(text)
    try:
        inv = read([str(f)])
    except BadInput as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert len(inv.hosts) + len(inv.problems) <= 100_000


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.frozensets(st.sampled_from("abcdefg"), max_size=5), min_size=1, max_size=8, unique=True),
       st.data())
def test_constraint_rule_is_exact_or_says_why(classes, data):
    """For any classes and any wanted subset: the constraint holds on exactly the wanted
    classes, or NoConstraint is raised exactly when a wanted class's features are a subset of
    an unwanted one's."""
    from compat.plan.features import NoConstraint, constraint, satisfies
    wanted_idx = data.draw(st.sets(st.integers(0, len(classes) - 1), min_size=1))
    wanted = [classes[i] for i in sorted(wanted_idx)]
    others = [c for i, c in enumerate(classes) if i not in wanted_idx]
    impossible = any(w <= o for w in wanted for o in others)
    try:
        expr = constraint(wanted, others)
    except NoConstraint:
        assert impossible
        return
    assert not impossible
    assert all(satisfies(w, expr) for w in wanted) and not any(satisfies(o, expr) for o in others)
