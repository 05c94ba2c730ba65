"""``Record``: a base class written like ``typing.NamedTuple`` (annotated fields, defaults,
methods, properties, a docstring) that builds a plain ``collections.namedtuple`` without
importing ``typing`` (~5 ms of every run). Type checkers see ``typing.NamedTuple`` itself.

::

    class GPU(Record):
        \"\"\"One GPU.\"\"\"
        vendor: str
        index: int = 0

        def label(self) -> str:
            return f"{self.vendor}{self.index}"

The fields are the class body's annotations, in order (read, never evaluated: the modules use
``from __future__ import annotations``); a field with a value has that default. The result
is what ``typing.NamedTuple`` gives: a tuple subclass with ``_fields``, ``_field_defaults``,
``_make``, ``_replace``, ``_asdict``, no instance ``__dict__``, the same errors for a field
without a default after one with a default, or for redefining the namedtuple's own names.
"""
import collections

TYPE_CHECKING = False

#: names a record may not define (typing.NamedTuple refuses the same)
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                         "_make", "_replace", "_asdict", "_source"})
#: what the class statement puts in every namespace, not copied onto the record
_SPECIAL = frozenset({"__module__", "__name__", "__qualname__", "__annotations__", "__classcell__",
                      "__annotate__", "__annotate_func__", "__annotations_cache__", "__static_attributes__",
                      "__firstlineno__"})


def _fields(namespace):
    """The annotated names of a class body, in order."""
    if "__annotations__" in namespace:
        return dict(namespace["__annotations__"])
    annotate = namespace.get("__annotate__") or namespace.get("__annotate_func__")
    if annotate is None:
        return {}
    # start-up: only Python 3.14 without ``from __future__ import annotations`` gets here
    import annotationlib
    return annotationlib.call_annotate_function(annotate, annotationlib.Format.FORWARDREF)


def _build(name, namespace):
    annotations = _fields(namespace)
    fields = tuple(annotations)
    defaults = {}
    for field in fields:
        if field in namespace:
            defaults[field] = namespace[field]
        elif defaults:
            raise TypeError(f"Non-default namedtuple field {field} cannot follow default field"
                            f"{'s' if len(defaults) > 1 else ''} {', '.join(defaults)}")
    cls = collections.namedtuple(name, fields, defaults=tuple(defaults.values()) or None,
                                 module=namespace.get("__module__"))
    cls.__annotations__ = annotations
    if "__qualname__" in namespace:
        cls.__qualname__ = namespace["__qualname__"]
    for key, value in namespace.items():
        if key in _PROHIBITED:
            raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
        if key not in _SPECIAL and key not in fields and not (key == "__doc__" and value is None):
            setattr(cls, key, value)
    if "__classcell__" in namespace:           # zero-argument super() in a method
        namespace["__classcell__"].cell_contents = cls
    return cls


class _RecordMeta(type):
    def __new__(mcs, name, bases, namespace):
        if not bases:                          # Record itself
            return super().__new__(mcs, name, bases, namespace)
        if bases != (Record,):
            raise TypeError(f"{name}: a Record derives from Record alone")
        return _build(name, namespace)


if TYPE_CHECKING:
    from typing import NamedTuple as Record
else:
    class Record(metaclass=_RecordMeta):
        """Derive from this as from ``typing.NamedTuple`` (module docstring)."""
