"""Stand-in for vztrace's in-script API under plain python: the same functions, doing nothing.

Under vztrace, ``import vztrace`` gets vztrace's built-in module whatever is installed (built-in
modules are found first), and its calls mark the trace. Under plain python this module lets
the same program run unchanged: install it (``pip install embed/python`` from vztrace's
sources) or put this directory on PYTHONPATH. Arguments are checked as vztrace checks them,
so a mistake fails the same way under both.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, TypeVar

__all__ = ["active", "counter", "ignore", "instant", "pause", "paused", "resume", "sparse", "span"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _check_name(function: str, name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"vztrace.{function}() name must be a str, not {type(name).__name__}")


def instant(name: str, /, **args: object) -> None:
    """An instant event on the calling thread's track (under vztrace)."""
    _check_name("instant", name)


def counter(name: str, /, **values: float) -> None:
    """A sample of counters: track 'name.key' for each key, 'name' for the key 'value'."""
    _check_name("counter", name)
    if not values:
        raise TypeError("vztrace.counter() needs at least one value, as key=number")
    for key, value in values.items():
        if not isinstance(value, (int, float)):
            raise TypeError(
                f"vztrace.counter() value '{key}' must be an int or a float, "
                f"not {type(value).__name__}"
            )


class _Span:
    """A span: `with` it, or decorate a function with it."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __enter__(self) -> _Span:
        return self

    def __exit__(self, *exc_info: object) -> bool:
        return False

    def __call__(self, function: _F) -> _F:
        return _wrap(function)

    def __repr__(self) -> str:
        return f"<vztrace.span {self._name!r}>"


def _wrap(function: _F) -> _F:
    if not callable(function):
        raise TypeError(
            f"vztrace.span() decorates a callable, not {type(function).__name__}"
        )

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def span(name: Any, /, **args: object) -> Any:
    """A slice of the program's own: ``with vztrace.span(name):``, ``@vztrace.span(name)`` or
    ``@vztrace.span`` (named by the function's qualname)."""
    if not isinstance(name, str) and callable(name):
        if not isinstance(getattr(name, "__qualname__", None), str):
            raise TypeError(
                f"vztrace.span() cannot name {name!r}: give the name, as @vztrace.span(\"name\")"
            )
        return _wrap(name)
    _check_name("span", name)
    return _Span(name)


def pause() -> None:
    """Stops recording in this process (under vztrace)."""


def resume() -> None:
    """Records again after pause() (under vztrace)."""


class _Paused:
    __slots__ = ()

    def __enter__(self) -> _Paused:
        return self

    def __exit__(self, *exc_info: object) -> bool:
        return False


def paused() -> _Paused:
    """A context manager: the recording is paused inside it (under vztrace)."""
    return _Paused()


def active() -> bool:
    """True when this process is being recorded and not paused: never under plain python."""
    return False


def _code_of(target: object) -> object:
    current = target
    for _ in range(16):
        for attribute in ("__code__", "__func__", "__wrapped__"):
            try:
                current = getattr(current, attribute)
                break
            except AttributeError:
                continue
        else:
            return None
        if isinstance(current, types.CodeType):
            return current
    return None


def _has_code(target: object) -> bool:
    if isinstance(target, property):
        return any(_code_of(f) is not None for f in (target.fget, target.fset, target.fdel))
    if _code_of(target) is not None:
        return True
    # functools.cached_property: a descriptor, not callable itself, with its function
    if not callable(target) and hasattr(type(target), "__get__"):
        return _code_of(getattr(target, "func", None)) is not None
    return False


def _decorate(decorator: str, target: _F) -> _F:
    if not isinstance(target, type) and not _has_code(target):
        raise TypeError(
            f"vztrace.{decorator} decorates a Python function, a method, a property or a "
            f"class, not {type(target).__name__}"
        )
    return target


def ignore(function: _F, /) -> _F:
    """Decorator: under vztrace the function's calls and all they call are left out."""
    return _decorate("ignore", function)


def sparse(function: _F, /) -> _F:
    """Decorator: under ``vztrace --log-sparse`` only functions so marked are recorded."""
    return _decorate("sparse", function)
