"""MPI inference when an image holds both ABIs: what the executables link decides; when they
disagree the key stays unknown naming both. Built with Debian's Open MPI and MPICH wrappers."""
import os
import shutil
import subprocess

import pytest

from test_infer import MPI_SRC, image, infer, proposed, sh, wrap_index

pytestmark = pytest.mark.skipif(not (shutil.which("mpicc.openmpi") and shutil.which("mpicc.mpich")),
                                reason="no MPI compilers")
LIB_SRC = '#include <mpi.h>\nint rank(void){int r; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r;}\n'


@pytest.fixture(scope="module")
def mpi(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpi")
    (d / "m.c").write_text(MPI_SRC)
    (d / "l.c").write_text(LIB_SRC)
    sh("mpicc.openmpi", "-o", "app-ompi", "m.c", cwd=d)
    sh("mpicc.mpich", "-o", "app-mpich", "m.c", cwd=d)
    sh("mpicc.mpich", "-shared", "-fPIC", "-o", "libhelper.so", "l.c", cwd=d)
    files = {name: (d / name).read_bytes() for name in ("app-ompi", "app-mpich", "libhelper.so")}
    for lib in ("libmpi.so.40", "libmpich.so.12"):
        real = os.path.realpath(f"/usr/lib/x86_64-linux-gnu/{lib}")
        files[lib] = ("usr/lib/x86_64-linux-gnu/" + os.path.basename(real), open(real, "rb").read())
    files["ompi_version"] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "openmpi-bin"],
                                           capture_output=True, text=True).stdout.split("-")[0]
    return files


def one_layer_index(tmp_path, files) -> str:
    """``oci:`` reference of an index over one image whose one layer holds ``files``."""
    out = str(tmp_path / "l")
    image(out, "x", [files])
    return wrap_index(out, "x")


def _both_libraries(mpi):
    return {mpi["libmpi.so.40"][0]: mpi["libmpi.so.40"][1], mpi["libmpich.so.12"][0]: mpi["libmpich.so.12"][1]}


def test_mpi_abi_is_what_the_executables_link(tmp_path, mpi):
    # both MPI libraries shipped, and a library linking MPICH; the one program links Open MPI
    files = _both_libraries(mpi)
    files.update({"opt/app/bin/solver": mpi["app-ompi"], "opt/app/lib/libhelper.so": mpi["libhelper.so"]})
    doc = infer(one_layer_index(tmp_path, files))
    p = proposed(doc)
    assert (p["mpi.abi"], p["mpi.implementation"], p["mpi.version"]) == ("openmpi", "openmpi", mpi["ompi_version"])
    assert [e["file"] for e in doc[0]["proposed"]["mpi.abi"]["evidence"]] == ["/opt/app/bin/solver"]


def test_executables_that_disagree_leave_mpi_unknown_naming_both(tmp_path, mpi):
    files = _both_libraries(mpi)
    files.update({"opt/a/bin/app": mpi["app-ompi"], "opt/b/bin/app": mpi["app-mpich"]})
    doc = infer(one_layer_index(tmp_path, files))
    assert "mpi.abi" not in doc[0]["proposed"] and "mpi.implementation" not in doc[0]["proposed"]
    why = doc[0]["unknown"]["mpi.abi"]
    assert "/opt/a/bin/app links libmpi.so.40 (openmpi)" in why
    assert "/opt/b/bin/app links libmpich.so.12 (mpich)" in why


def test_mpi_evidence_is_readable_text_not_a_tuple(tmp_path, mpi):
    files = _both_libraries(mpi)
    files["opt/app/bin/solver"] = mpi["app-ompi"]
    ref = one_layer_index(tmp_path, files)
    doc = infer(ref)
    ev = doc[0]["proposed"]["mpi.implementation"]["evidence"][0]["value"]
    assert ev == f"openmpi {mpi['ompi_version']} (openmpi ABI)"
    from conftest import run_compat
    text = run_compat("annotate", ref, "--infer", check=0).stdout
    assert "('" not in text and f"openmpi {mpi['ompi_version']} (openmpi ABI)" in text


def test_every_mpi_soname_of_the_data_table_gives_its_abi():
    from compat.infer.analyse import Finding
    from compat.infer.propose import propose
    from compat.vocab.data import load
    table = {k: v for k, v in load("mpi")["sonames"].items() if k != "_source"}
    assert {"libmpi.so.40", "libmpi.so.12", "libmpich.so.12", "libmpi_abi.so"} <= set(table)
    for soname, abi in table.items():
        files = {"opt/app": [Finding("executable", True, "/opt/app", "ELF header"),
                             Finding("needed", soname, "/opt/app", ".dynamic (DT_NEEDED)")]}
        got = {p.key: p.value for p in propose(files)["proposals"]}
        assert got["mpi.abi"] == abi, soname


def test_each_evidence_line_is_listed_once():
    """Two findings that read the same (a fat binary with two entries for one target) are one
    line of evidence."""
    from compat.infer.analyse import Finding
    from compat.infer.propose import _evidence

    same = Finding("fabric_provider", "verbs", "/usr/lib/libfabric.so.1", ".rodata")
    other = Finding("fabric_provider", "efa", "/usr/lib/libfabric.so.1", ".rodata")
    assert [e["value"] for e in _evidence([same, same, other, same])] == ["verbs", "efa"]
