"""Frozen records: ``@record`` is ``@dataclass(frozen=True)`` at a third of its import cost.

On Python 3.11 ``dataclass`` writes six methods per class as source text and compiles each
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, the frozen ``__setattr__`` and
``__delattr__``): 0.6-0.9 ms a class, 48-60 ms of each document function's cold start for
the ~60 classes it imports (bench/analysis.md, sixth round), paid by every process at every
start. A record compiles only
its ``__init__`` (the one method whose speed matters, and whose signature is the class's);
the five others are shared functions that read the class's fields, with the same results:

* ``__eq__``: instances of the same class whose fields with ``compare`` are equal, else
  ``NotImplemented``; ``__hash__``: the hash of the fields with ``hash`` (else ``compare``),
  as a tuple; ``__repr__``: ``Name(field=value, ...)`` of the fields with ``repr``.
* ``__setattr__``/``__delattr__`` raise :class:`dataclasses.FrozenInstanceError` on an
  instance of the record (and on a field of a subclass's instance), as a frozen dataclass.

A record is a dataclass (``dataclasses.fields``, ``replace``, ``asdict``, ``is_dataclass``
and ``__match_args__`` work, its ``__dataclass_params__`` are a frozen dataclass's; type
checkers see a frozen dataclass through ``dataclass_transform``). Supported: fields with
defaults or ``default_factory`` and the ``field()`` options ``repr``, ``compare``, ``hash``
and ``metadata``; a ``__post_init__``, a keyword-only or ``init=False`` field or a method a
record makes, an ``InitVar`` or a dataclass among its bases is refused with a TypeError when
the class is made: use ``dataclass`` there.
tests/test_records.py holds records to ``dataclass(frozen=True)``'s behaviour.

**Compiled once.** Compiling a record's ``__init__`` is still ~0.1 ms, ~5 ms of a document
function's start for its ~50 records. As Python keeps a module's bytecode in ``__pycache__``,
the code objects of a module's records are kept beside it (``__pycache__/<module>.<cache
tag>.records``, under ``sys.pycache_prefix`` when set: ``marshal`` of {generated source:
code}, after the interpreter's bytecode magic number and :data:`CODE_CACHE_FORMAT`), read
when the module's first record is made and used for every record whose generated source is
the same; a record it does not hold is compiled and the file rewritten (atomically, mode
0644; not when Python writes no bytecode (``PYTHONDONTWRITEBYTECODE``), and silently not
where the directory is read-only). A file of another interpreter or format, or a damaged
one, is not used. ``python -m invoiceflow.records`` imports every module of the package and
writes its files, with exactly the records there are, even when Python writes no bytecode
(exit status 1 when it wrote none): the image runs it after ``compileall``, the benchmark
before timing cold starts. tests/test_records_cache.py.

This module is at the bottom of the package, beside :mod:`invoiceflow.errors`: it imports
only the standard library and :mod:`invoiceflow.cachefiles` (standard library only).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import marshal
import reprlib
import sys
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any, TypeVar, dataclass_transform

from invoiceflow.cachefiles import write_atomically

__all__ = ["record"]

_T = TypeVar("_T")
#: the marker of a class made by :func:`record` (in its own ``__dict__``)
_MARK = "__invoiceflow_record__"


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[_T]) -> type[_T]:
    """``cls`` as a frozen dataclass (see the module's docstring)."""
    if any(name in cls.__dict__ for name in _SHARED):
        raise TypeError(f"{cls.__qualname__} defines a method a record makes")
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__qualname__}: __post_init__ needs @dataclass(frozen=True)")
    if any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a record does not inherit from a dataclass")
    documented = bool(cls.__dict__.get("__doc__"))
    if not documented:  # dataclass would write it from the __init__ it does not make
        cls.__doc__ = "(a record)"
    made: type[_T] = dataclasses.dataclass(cls, init=False, repr=False, eq=False)
    fields = list(dataclasses.fields(made))  # type: ignore[arg-type]
    for f in fields:
        if not f.init or f.kw_only is True:
            raise TypeError(f"{cls.__qualname__}.{f.name}: needs @dataclass(frozen=True)")
    for f in made.__dataclass_fields__.values():  # type: ignore[attr-defined]
        if f not in fields and (
            isinstance(f.type, dataclasses.InitVar)
            or f.type is dataclasses.InitVar
            or (isinstance(f.type, str) and "InitVar" in f.type)
        ):
            raise TypeError(f"{cls.__qualname__}.{f.name}: an InitVar needs @dataclass")
    shared = {"__repr__": _repr, "__eq__": _eq, "__hash__": _hash}
    shared.update(__setattr__=_setattr, __delattr__=_delattr, __init__=_init(made, fields))
    for name, method in shared.items():
        setattr(made, name, method)
    setattr(made, _MARK, True)
    if not documented:  # as dataclass writes it: the name and the signature
        made.__doc__ = made.__name__ + str(inspect.signature(made)).replace(" -> None", "")
    made.__dataclass_params__ = _FROZEN_PARAMS  # type: ignore[attr-defined] # what it behaves as
    made._record_repr = tuple(f.name for f in fields if f.repr)  # type: ignore[attr-defined]
    compared = [f.name for f in fields if f.compare]
    hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
    made._record_compare = _getter(compared)  # type: ignore[attr-defined]
    made._record_hash = _getter(hashed)  # type: ignore[attr-defined]
    return made


def _getter(names: list[str]) -> Callable[[object], tuple[Any, ...]]:
    """A function giving the values of ``names`` of an object, as a tuple."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return attrgetter(*names)


def _init(cls: type, fields: list[dataclasses.Field[Any]]) -> Callable[..., None]:
    """The record's ``__init__``, compiled: as a frozen dataclass's, ``object.__setattr__``
    per field in order, a default factory called when its argument is not given. Made, as
    dataclass makes it, inside a function whose arguments hold the defaults and helpers, run
    in the class's module (so its annotations resolve there)."""
    names = {f.name for f in fields}
    me = "__dataclass_self__" if "self" in names else "self"  # dataclass's name for it too
    args, body = [me], []
    scope: dict[str, Any] = {"__record_set": object.__setattr__, "__record_unset": _UNSET}
    defaulted = False
    for i, f in enumerate(fields):
        value = f.name
        if f.default is not dataclasses.MISSING:
            scope[f"__record_default_{i}"] = f.default
            args.append(f"{f.name}=__record_default_{i}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"__record_factory_{i}"] = f.default_factory
            args.append(f"{f.name}=__record_unset")
            value = f"__record_factory_{i}() if {f.name} is __record_unset else {f.name}"
        elif defaulted:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            args.append(f.name)
        defaulted = defaulted or f.name != args[-1]
        body.append(f"  __record_set({me}, {f.name!r}, {value})")
    source = (
        f"def __create_record_init__({', '.join(scope)}):\n"
        f" def __init__({', '.join(args)}):\n"
        + ("\n".join(body) or "  pass")
        + "\n return __init__\n"
    )
    module = sys.modules.get(cls.__module__)
    namespace: dict[str, Any] = {}
    code = _compiled(module, f"<record {cls.__qualname__}>", source)
    exec(code, module.__dict__ if module else {}, namespace)  # noqa: S102
    init: Callable[..., None] = namespace["__create_record_init__"](**scope)
    init.__annotations__ = {f.name: f.type for f in fields} | {"return": None}
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class _Unset:
    def __repr__(self) -> str:  # as dataclass shows a default factory in a signature
        return "<factory>"


_UNSET = _Unset()


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._record_repr)
    return f"{type(self).__qualname__}({values})"


def _eq(self: Any, other: Any) -> object:
    if other.__class__ is self.__class__:
        return bool(self._record_compare(self) == self._record_compare(other))
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self._record_hash(self))


def _frozen(self: object, name: str) -> bool:
    cls = type(self)
    return _MARK in cls.__dict__ or name in cls.__dataclass_fields__  # type: ignore[attr-defined]


def _setattr(self: object, name: str, value: object) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: object, name: str) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


@dataclasses.dataclass(frozen=True)
class _Frozen:
    """Made once: its ``__dataclass_params__`` (init, repr, eq, frozen) are every record's."""


_FROZEN_PARAMS = _Frozen.__dataclass_params__  # type: ignore[attr-defined]

_SHARED = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")


# -- the compiled code, kept beside the module's bytecode ----------------------------------------

#: bump when what a cache file holds changes
CODE_CACHE_FORMAT = 1
_HEADER = importlib.util.MAGIC_NUMBER + bytes([CODE_CACHE_FORMAT])
#: write the files even when Python writes no bytecode (``python -m invoiceflow.records``)
_write_always = False


class _CodeCache:
    """One module's records' code: read once; written when a record was compiled (with what
    the file held: the module's later records are not made yet), by ``write_caches`` with
    the records made in this process only (so entries of changed or removed records go);
    never again once a write failed (a read-only directory)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.kept: dict[str, CodeType] = self._read() if path is not None else {}
        self.used: dict[str, CodeType] = {}

    def _read(self) -> dict[str, CodeType]:
        assert self.path is not None
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        if not data.startswith(_HEADER):  # another interpreter's, or another format's
            return {}
        try:
            # the package's own compiled code, trusted as its .pyc files are
            entries = marshal.loads(data[len(_HEADER) :])  # noqa: S302
        except (EOFError, ValueError, TypeError):
            return {}
        if not isinstance(entries, dict) or not all(
            isinstance(k, str) and isinstance(v, CodeType) for k, v in entries.items()
        ):
            return {}
        return entries

    def code(self, key: str, make: Callable[[], CodeType]) -> CodeType:
        kept = self.kept.get(key)
        code = self.used[key] = kept if kept is not None else make()
        if kept is None:
            self.write(keep=True)
        return code

    def write(self, *, keep: bool = False) -> Path | None:
        """Write the code of the records made so far, and with ``keep`` what the file held
        (:func:`.cachefiles.write_atomically`); the path, or None where that is not
        possible."""
        if self.path is None or not (_write_always or not sys.dont_write_bytecode):
            return None
        entries = {**self.kept, **self.used} if keep else self.used
        if write_atomically(self.path, _HEADER + marshal.dumps(entries)):
            return self.path
        self.path = None  # not writable here: not tried again by this process
        return None


_caches: dict[str, _CodeCache] = {}


def cache_path(module: ModuleType) -> Path | None:
    """Where the compiled code of ``module``'s records is kept (None: nowhere)."""
    source = getattr(module, "__file__", None)
    if not source or not source.endswith(".py"):
        return None
    try:
        pyc = importlib.util.cache_from_source(source)
    except NotImplementedError:  # an interpreter without bytecode caching
        return None
    return Path(pyc).with_suffix(".records")


def _compiled(module: ModuleType | None, filename: str, source: str) -> CodeType:
    """The code of ``source`` compiled as ``filename``: kept for ``module`` (see the module's
    docstring), else compiled."""
    if module is None:
        return compile(source, filename, "exec")
    cache = _caches.get(module.__name__)
    if cache is None:
        cache = _caches[module.__name__] = _CodeCache(cache_path(module))
    return cache.code(f"{filename}\n{source}", lambda: compile(source, filename, "exec"))


def write_caches(package: str = "invoiceflow") -> list[Path]:
    """Import every module of ``package`` and write the compiled code of its records, even
    when Python writes no bytecode; the files written (a module whose records' code was
    kept already is written again: the file is then its own). A module that cannot be
    imported here is reported on stderr and skipped."""
    import importlib
    import pkgutil

    global _write_always
    _write_always = True
    try:
        root = importlib.import_module(package)
        # onerror: a subpackage that fails is reported below, not raised by the walk
        for info in pkgutil.walk_packages(root.__path__, f"{package}.", onerror=lambda _: None):
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # noqa: BLE001 - reported, the others still written
                print(f"{info.name}: not imported ({exc.__class__.__name__})", file=sys.stderr)
        written = []
        for name, cache in list(_caches.items()):
            if (name == package or name.startswith(f"{package}.")) and cache.used:
                path = cache.write()
                if path is not None:
                    written.append(path)
        return sorted(written)
    finally:
        _write_always = False


if __name__ == "__main__":
    # python -m invoiceflow.records [package]: runs as __main__, so the package's own module
    # (the one its classes use) writes them; an exit status 1 when nothing was written (a
    # build that should have written them fails)
    from invoiceflow import records as _records

    _written = _records.write_caches(*sys.argv[1:2])
    for _path in _written:
        print(_path)
    sys.exit(0 if _written else 1)
