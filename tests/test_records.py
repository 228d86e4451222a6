"""invoiceflow.records: a record behaves as ``dataclass(frozen=True)`` makes the same class
(construction, defaults and factories, repr, equality, hash, immutability, the dataclasses
functions, pickling), and a class it cannot make is refused when it is made."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.records import record

ROOT = Path(__file__).resolve().parents[1]


def _twins() -> tuple[type[Any], type[Any]]:
    """The same class body, made by ``dataclass(frozen=True)`` and by ``record``."""

    def body() -> type[Any]:
        class Item:
            """A line."""

            name: str
            price: Decimal
            quantity: int = 1
            tags: list[str] = dataclasses.field(default_factory=list)
            note: str = dataclasses.field(default="", compare=False)
            secret: bytes = dataclasses.field(default=b"", repr=False)
            cache_key: str = dataclasses.field(default="k", hash=False)

            @cached_property
            def total(self) -> Decimal:
                return self.price * self.quantity

        return Item

    return dataclasses.dataclass(frozen=True)(body()), record(body())


DATACLASS, RECORD = _twins()
ARGS = [
    (("pen", Decimal("1.50")), {}),
    (("pen", Decimal("1.50"), 3), {"tags": ["a"], "note": "n", "secret": b"s"}),
    ((), {"name": "ink", "price": Decimal("2"), "cache_key": "x"}),
]


@pytest.mark.parametrize(("args", "kwargs"), ARGS)
def test_construction_repr_fields_and_dataclass_functions_match(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    a, b = DATACLASS(*args, **kwargs), RECORD(*args, **kwargs)
    assert vars(a) == vars(b)
    assert list(vars(a)) == list(vars(b))  # set in the same order
    assert repr(a) == repr(b)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert dataclasses.astuple(a) == dataclasses.astuple(b)
    assert [f.name for f in dataclasses.fields(a)] == [f.name for f in dataclasses.fields(b)]
    assert vars(dataclasses.replace(a, quantity=9)) == vars(dataclasses.replace(b, quantity=9))
    assert type(dataclasses.replace(b, quantity=9)) is RECORD
    assert a.total == b.total  # a cached_property works on both
    assert RECORD.__match_args__ == DATACLASS.__match_args__
    assert str(inspect.signature(RECORD)) == str(inspect.signature(DATACLASS))
    assert RECORD.__dataclass_params__.frozen and RECORD.__dataclass_params__.eq
    assert vars(copy.deepcopy(b)) == vars(b)
    assert dataclasses.is_dataclass(b) and dataclasses.is_dataclass(RECORD)


def test_a_record_pickles() -> None:
    from invoiceflow.domain.model import PostalAddress

    address = PostalAddress(country="DE", city="Berlin", lines=("Unter den Linden 1",))
    copied = pickle.loads(pickle.dumps(address))  # noqa: S301 (the test's own bytes)
    assert copied == address
    assert vars(copied) == vars(address)


def test_default_factories_make_a_new_value_per_instance() -> None:
    one, two = RECORD("a", Decimal(1)), RECORD("b", Decimal(1))
    assert one.tags == [] and one.tags is not two.tags
    given: list[str] = []
    assert RECORD("c", Decimal(1), tags=given).tags is given


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), (("a",), {}), (("a", 1, 2, [], "", b"", "", "extra"), {}), (("a", 1), {"x": 1})],
)
def test_wrong_arguments_are_the_same_type_error(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError) as expected:
        DATACLASS(*args, **kwargs)
    with pytest.raises(TypeError) as got:
        RECORD(*args, **kwargs)
    assert str(got.value) == str(expected.value)


def test_equality_and_hash_are_a_frozen_dataclasses() -> None:
    values = [
        ("pen", Decimal("1.5")),
        ("pen", Decimal("1.50")),  # equal Decimals
        ("pen", Decimal("2")),
    ]
    for cls in (DATACLASS, RECORD):
        assert cls(*values[0]) == cls(*values[1])
        assert hash(cls(*values[0], tags=())) == hash(cls(*values[1], tags=()))
        assert cls(*values[0]) != cls(*values[2])
        assert cls(*values[0], note="x") == cls(*values[0], note="y")  # compare=False
        assert cls(*values[0]) != ("pen", Decimal("1.5"))
    for args in values:
        # the hash of the fields with hash (else compare), as a tuple: the same number
        assert hash(RECORD(*args, tags=())) == hash(DATACLASS(*args, tags=()))
        assert hash(RECORD(*args, tags=(), cache_key="1")) == hash(RECORD(*args, tags=()))
    assert RECORD(*values[0]) != DATACLASS(*values[0])  # another class
    assert RECORD(*values[0]).__eq__(DATACLASS(*values[0])) is NotImplemented
    with pytest.raises(TypeError, match="unhashable"):
        hash(RECORD("pen", Decimal(1), tags=["a list"]))


def test_a_record_cannot_be_changed() -> None:
    b = RECORD("pen", Decimal(1))
    changes: list[Callable[[], None]] = [
        lambda: setattr(b, "name", "ink"),
        lambda: setattr(b, "unknown", 1),
        lambda: delattr(b, "name"),
        lambda: delattr(b, "unknown"),
    ]
    for change in changes:
        with pytest.raises(dataclasses.FrozenInstanceError):
            change()
    assert b.name == "pen"


def test_a_subclass_may_set_its_own_attributes_but_not_the_fields() -> None:
    """As a frozen dataclass's: only the record's own instances are wholly frozen."""
    for cls in (DATACLASS, RECORD):
        sub = type("Sub", (cls,), {})("pen", Decimal(1))
        sub.extra = 1
        assert sub.extra == 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            sub.name = "ink"


def test_an_undocumented_record_gets_a_dataclasses_docstring() -> None:
    def body() -> type[Any]:
        class Plain:
            x: int
            y: list[int] = dataclasses.field(default_factory=list)

        return Plain

    assert record(body()).__doc__ == dataclasses.dataclass(frozen=True)(body()).__doc__
    assert RECORD.__doc__ == "A line."


def test_a_recursive_repr_does_not_recurse() -> None:
    @record
    class Node:
        children: list[Any]

    node = Node([])
    node.children.append(node)
    assert repr(node) == "test_a_recursive_repr_does_not_recurse.<locals>.Node(children=[...])"


@pytest.mark.parametrize(
    "body",
    [
        {"__annotations__": {"a": "int"}, "__post_init__": lambda self: None},
        {"__annotations__": {"a": "int"}, "a": dataclasses.field(init=False, default=1)},
        {"__annotations__": {"a": "int"}, "a": dataclasses.field(kw_only=True)},
        {"__annotations__": {"a": "int"}, "__eq__": lambda self, other: True},
        {"__annotations__": {"a": "int"}, "__repr__": lambda self: "A"},
        {"__annotations__": {"a": "int", "b": dataclasses.InitVar[int]}},
    ],
    ids=["post_init", "init_false", "kw_only", "own_eq", "own_repr", "init_var"],
)
def test_what_a_record_does_not_make_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="A"):
        record(type("A", (), dict(body)))


def test_a_record_compiles_only_its_init() -> None:
    """What it is for: ``dataclass`` compiles six methods per frozen class, a record one."""
    script = (
        "import builtins, dataclasses\n"
        "from invoiceflow.records import record\n"
        "compiled = []\n"
        "real = builtins.compile\n"
        "builtins.compile = lambda *a, **k: (compiled.append(a[1]), real(*a, **k))[1]\n"
        "real_exec = builtins.exec\n"
        "def counting_exec(src, *a, **k):\n"
        "    compiled.append('exec')\n"
        "    return real_exec(src, *a, **k)\n"
        "builtins.exec = counting_exec\n"
        "@record\n"
        "class A:\n"
        "    x: int\n"
        "    y: str = ''\n"
        "print(len(compiled))\n"
        "compiled.clear()\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class B:\n"
        "    x: int\n"
        "    y: str = ''\n"
        "print(len(compiled))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    ours, theirs = (int(n) for n in out.stdout.split())
    assert (ours, theirs) == (2, 6)  # compile + exec of __init__; six exec


def test_a_record_does_not_inherit_from_a_dataclass() -> None:
    with pytest.raises(TypeError, match="inherit"):
        record(type("B", (RECORD,), {"__annotations__": {"extra": "int"}, "extra": 0}))


def test_a_required_field_after_a_default_is_the_same_type_error() -> None:
    body = {"__annotations__": {"a": "int", "b": "int"}, "a": 0}
    with pytest.raises(TypeError) as expected:
        dataclasses.dataclass(frozen=True)(type("C", (), dict(body)))
    with pytest.raises(TypeError) as got:
        record(type("C", (), dict(body)))
    assert str(got.value) == str(expected.value)


def test_a_field_named_self_and_annotations_resolved_in_the_module() -> None:
    """As dataclass: ``self`` may be a field, and the ``__init__``'s annotations (strings
    here: ``from __future__ import annotations``) resolve in the class's module."""
    import typing

    @record
    class Odd:
        self: int
        price: Decimal

    odd = Odd(1, Decimal(2))
    assert (odd.self, odd.price) == (1, Decimal(2))
    assert typing.get_type_hints(RECORD.__init__) == typing.get_type_hints(DATACLASS.__init__)
    hints = typing.get_type_hints(Odd.__init__)
    assert hints == {"self": int, "price": Decimal, "return": type(None)}
