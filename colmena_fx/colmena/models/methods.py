"""Colmena's method wrappers (`colmena.models.methods`), as plain callables.

colmena-fx runs any function as a method, so `PythonMethod` only renames one;
`ExecutableMethod` is colmena-fx's own (`colmena_fx.executable`), which keeps
Colmena's subclassing contract.
`PythonGeneratorMethod` keeps Colmena's two behaviours: with a
`streaming_queue`, each yield reaches the thinker as an intermediate result
(colmena-fx streams generator methods itself); without one, the yields come back
together as a list.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Generator
from collections.abc import Iterable
from typing import Any

from colmena_fx.executable import ExecutableMethod

__all__ = ["ExecutableMethod", "PythonGeneratorMethod", "PythonMethod"]


class PythonMethod:
    """A function run as the method `name` (its own name by default)."""

    def __init__(self, function: Callable[..., Any], name: str | None = None) -> None:
        self.function = function
        self.name = name or function.__name__

    @property
    def __name__(self) -> str:  # the federation routes methods by this name
        return self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


class PythonGeneratorMethod(PythonMethod):
    """A generator function run as a method.

    `streaming_queue` only says *whether* to stream (any queue object turns it
    on): then each yield is an intermediate result on the task's own topic, live
    on local sites, as in Colmena. With `store_return_value`, the generator's
    `return` value is the final result's value (streaming) or the second item of
    `(yields, return value)`.
    """

    def __new__(
        cls,
        function: Callable[..., Generator[Any, Any, Any] | Iterable[Any]],
        name: str | None = None,
        store_return_value: bool = False,
        streaming_queue: object | None = None,
    ) -> PythonGeneratorMethod:
        # Streaming needs a `__call__` that is itself a generator function: that
        # is how the federation tells a streaming method before it runs.
        kind = cls if streaming_queue is None else _StreamingGeneratorMethod
        return super().__new__(kind)

    def __init__(
        self,
        function: Callable[..., Generator[Any, Any, Any] | Iterable[Any]],
        name: str | None = None,
        store_return_value: bool = False,
        streaming_queue: object | None = None,
    ) -> None:
        super().__init__(function, name)
        self.store_return_value = store_return_value
        self.streaming = streaming_queue is not None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        generator = iter(self.function(*args, **kwargs))
        yielded = []
        while True:
            try:
                yielded.append(next(generator))
            except StopIteration as end:
                return (yielded, end.value) if self.store_return_value else yielded

    def __reduce__(self) -> tuple[Any, ...]:
        queue = object() if self.streaming else None
        return (
            PythonGeneratorMethod,
            (self.function, self.name, self.store_return_value, queue),
        )


class _StreamingGeneratorMethod(PythonGeneratorMethod):
    def __call__(self, *args: Any, **kwargs: Any) -> Generator[Any, None, Any]:
        returned = yield from iter(self.function(*args, **kwargs))
        return returned if self.store_return_value else None
