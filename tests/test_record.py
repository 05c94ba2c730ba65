"""compat.record.Record behaves as typing.NamedTuple does (the same class bodies, built both
ways, compared), without importing typing."""
from __future__ import annotations

import pickle
import subprocess
import sys
import typing

import pytest

from compat.record import Record
from conftest import REPO


def point_class(base):
    class Point(base):
        """A point."""

        x: int
        y: int = 0
        label: str = "p"
        KIND = "point"                         # a class attribute, not a field

        def norm1(self) -> int:
            return abs(self.x) + abs(self.y)

        @property
        def pair(self):
            return (self.x, self.y)

        @classmethod
        def origin(cls):
            return cls(0)

        @staticmethod
        def unit():
            return 1

        def __str__(self):
            return f"<{self.x},{self.y}>"
    return Point


def bare_class(base):
    class Bare(base):
        a: str
        b: typing.Optional[int]
    return Bare


# pickle finds classes by module and name
PointNT, PointR = point_class(typing.NamedTuple), point_class(Record)
PointNT.__qualname__ = PointNT.__name__ = "PointNT"
PointR.__qualname__ = PointR.__name__ = "PointR"


@pytest.mark.parametrize("make", [point_class, bare_class])
def test_same_shape_as_typing_namedtuple(make):
    nt, rec = make(typing.NamedTuple), make(Record)
    assert rec._fields == nt._fields
    assert rec._field_defaults == nt._field_defaults
    assert rec.__doc__ == nt.__doc__
    assert rec.__name__ == nt.__name__ and rec.__qualname__ == nt.__qualname__
    assert rec.__module__ == nt.__module__ == __name__
    assert list(rec.__annotations__) == list(nt.__annotations__)
    assert issubclass(rec, tuple) and not hasattr(rec(*["v"] * len(rec._fields)), "__dict__")


def test_same_behaviour_as_typing_namedtuple():
    for cls in (PointNT, PointR):
        p = cls(3, -4)
        assert p == (3, -4, "p") and p.x == 3 and p[1] == -4 and p.label == "p"
        assert p.norm1() == 7 and p.pair == (3, -4) and cls.origin() == (0, 0, "p") and cls.unit() == 1
        assert str(p) == "<3,-4>" and cls.KIND == "point" and "KIND" not in cls._fields
        assert p._replace(y=1) == cls(3, 1) and type(p._replace(y=1)) is cls
        assert p._asdict() == {"x": 3, "y": -4, "label": "p"}
        assert cls._make([1, 2, "q"]) == cls(1, 2, "q")
        assert pickle.loads(pickle.dumps(p)) == p and hash(p) == hash((3, -4, "p"))
        with pytest.raises(TypeError):
            cls()                               # x has no default
        with pytest.raises(AttributeError):
            p.x = 1
    assert repr(PointR(1)) == "PointR(x=1, y=0, label='p')"


def test_same_refusals_as_typing_namedtuple():
    for base in (typing.NamedTuple, Record):
        with pytest.raises(TypeError, match="Non-default namedtuple field b cannot follow default field a"):
            class Bad(base):
                a: int = 1
                b: int
        with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _replace"):
            class Worse(base):
                a: int

                def _replace(self):
                    return self


def test_zero_argument_super_and_subclasses():
    """super() in a method works (typing.NamedTuple before Python 3.12 raised RuntimeError)."""
    class Named(Record):
        name: str

        def __repr__(self):
            return "named " + super().__repr__()

    class Shout(Named):
        def loud(self):
            return self.name.upper()

    assert repr(Named("a")) == "named ('a',)"      # tuple's: the record's own __repr__ was replaced
    assert Shout("a").loud() == "A" and Shout("a")._replace(name="b") == ("b",)
    with pytest.raises(TypeError, match="derives from Record alone"):
        class Mixed(Record, dict):
            a: int


def test_importing_it_imports_no_typing():
    code = "import sys, compat.record; assert 'typing' not in sys.modules, 'typing'"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": REPO})
