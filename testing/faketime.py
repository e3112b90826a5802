"""Run a process whose wall clock is off by a known amount, with libfaketime.

The library comes from the `libfaketime` package on PyPI, not from Debian's
`faketime` 0.9.10: under that one, Python 3.11 hangs in every lock or queue wait
with a timeout (its `sem_clockwait` on the monotonic clock is faked wrongly), and
with `FAKETIME_DONT_FAKE_MONOTONIC=1` its `time.sleep` fails with EINVAL. The PyPI
build, with the monotonic clock left alone, shifts only the wall clock, which is
exactly what a site whose clock disagrees with the client's looks like.
"""

from __future__ import annotations

from pathlib import Path


def library() -> Path:
    """The preloadable libfaketime shared object."""
    try:
        import libfaketime
    except ImportError:
        raise RuntimeError(
            "the libfaketime package is missing: pip install -e '.[test]'"
        ) from None
    path = Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1"
    if not path.exists():
        raise RuntimeError(f"the libfaketime package has no {path.name} at {path}")
    return path


def faketime_env(offset_s: float) -> dict[str, str]:
    """Environment variables that shift a process's wall clock by `offset_s`."""
    return {
        "LD_PRELOAD": str(library()),
        "FAKETIME": f"{offset_s:+.6f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
