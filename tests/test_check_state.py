"""The data path's typed outputs: a Check's state is an enum (not a prefix of its sentence),
the ranking key has names, and ``compat check`` renders the NFD results the ranking kept."""
from __future__ import annotations

import json

import pytest

from compat.match.check import Check, State, fail, ok, undecided, unknown
from compat.match.rank import RankKey
from test_nfd_interop import LAPTOP, layout_with_nfd


@pytest.mark.parametrize("check, state", [
    (ok("cpu", "zen3 <= zen4"), State.OK),
    (fail("cpu", "needs zen4; host is zen3"), State.FAIL),
    (unknown("cpu", "cpu.target"), State.UNKNOWN),
    (undecided("gpu", "the driver's CUDA is not known"), State.UNKNOWN),
    (Check("nfd", True, ""), State.OK),
    (Check("cpu", False, "unknown: said in words only"), State.FAIL),   # the sentence decides nothing
])
def test_the_state_is_an_enum(check, state):
    assert check.verdict is state
    assert check.unknown == (state is State.UNKNOWN)
    assert check.ok == (state is State.OK)


def test_the_rank_key_orders_as_its_fields_in_order():
    low = RankKey(gpu=(1, 0, ()), fabric=2, mpi=2, cpu=(9, 9, 9), requirements=9, weight=9, order=0)
    high = low._replace(gpu=(2, 0, ()), fabric=0)
    assert sorted([high, low], reverse=True)[0] is high
    assert high > low._replace(order=-1) and low > low._replace(order=-1)
    assert RankKey._fields == ("gpu", "fabric", "mpi", "cpu", "requirements", "weight", "order")


def test_check_renders_the_ranking_results_without_evaluating_again(tmp_path, monkeypatch, capsys):
    from compat.cli import check as check_cmd
    from compat.cli.main import main
    ref, (_, _, nfd_only) = layout_with_nfd(tmp_path)
    calls = []
    real = check_cmd.evaluate_spec
    monkeypatch.setattr(check_cmd, "evaluate_spec", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert main(["check", ref, "--sysroot", LAPTOP, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    nfd = [c for c in doc["candidates"] if c["digest"] == nfd_only][0]["nfd"]
    assert [s["tag"] for s in nfd["sets"]] == ["avx512-ib", "fallback"]
    assert calls == []                                  # the selected candidate's results were kept
