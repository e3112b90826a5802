"""Run a process whose wall clock is off by a known amount, with libfaketime.

The library comes from the `libfaketime` package on PyPI, not from Debian's
`faketime` 0.9.10: under that one, Python 3.11 hangs in every lock or queue wait
with a timeout (its `sem_clockwait` on the monotonic clock is faked wrongly), and
with `FAKETIME_DONT_FAKE_MONOTONIC=1` its `time.sleep` fails with EINVAL. The PyPI
build, with the monotonic clock left alone, shifts only the wall clock, which is
exactly what a site whose clock disagrees with the client's looks like.

A fixed offset is `faketime_env(offset_s)`. A clock that also drifts, or that the
test steps mid-run, is a `ClockControl`: how libfaketime behaves, which decides how
that one is built (read in its `libfaketime.c`, and checked by experiment):

* `FAKETIME="+3 x1.0002"` gives `fake = start + 3 + 1.0002 * (real - start)`, where
  `start` is the real time at which libfaketime started in the process: the drift
  has an origin, and it is not the test's.
* Every process libfaketime starts in publishes its `start` in a POSIX shared memory
  segment named in `FAKETIME_SHARED` (`"/sem_name /shm_name"`), which it sets in its
  own environment unless it found one there. Forked children share the memory
  anyway; exec'd ones (`subprocess`, multiprocessing's spawn and forkserver) inherit
  the variable and take `start` from the segment. So one process tree has one drift
  origin, that of its first process (the endpoint), unless a child's environment is
  built without `FAKETIME_SHARED`, which restarts the origin in that child.
* A test that creates the segment itself, with `start` = its own `t0`, and passes
  `FAKETIME_SHARED` to the endpoint, fixes the origin for every process of the
  site: `remote(t) = t + offset + drift * (t - t0)`, `t` the real (client) time.
* Without `FAKETIME` in the environment, libfaketime reads the same spec from
  `FAKETIME_TIMESTAMP_FILE`, again on every wall clock read with
  `FAKETIME_NO_CACHE=1` (with a cache, `FAKETIME_CACHE_DURATION`, only when the
  whole second changes: a step would take effect up to a second late). A new
  `+offset` there moves the line by the difference, at once, in every process,
  and keeps `start` (only `@` specs reset it): a step. That costs a file read per
  wall clock read (the monotonic clocks are never faked with
  `FAKETIME_DONT_FAKE_MONOTONIC=1`, and are not slowed).
* The rate also scales sleeps and timeouts (by 1/rate, a few ppm here), harmless.
* Re-reading the file is not thread-safe in the stock build: a process whose threads
  read the clock at once now and then gets the real, unfaked time (seen: 2 to 4
  times in 5 s with 6 to 12 threads reading; the endpoint has that many). The
  library's own thread-safe variant, `libfaketimeMT` (built with
  `PTHREAD_SINGLETHREADED_TIME`: one lock around each faked read), never did; it
  is not in the wheel, so `make` builds it from the wheel's own source
  (`python -m testing.faketime --build`), and a steppable clock uses it.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

#: Where `make` puts the thread-safe build: beside the environment's Python.
THREADSAFE_LIBRARY = Path(sys.prefix) / "lib" / "libfaketimeMT.so.1"


def library(threadsafe: bool = False) -> Path:
    """The preloadable libfaketime shared object; `threadsafe`: the variant that
    re-reads a control file safely in a process of many threads."""
    if threadsafe:
        if not THREADSAFE_LIBRARY.exists():
            raise RuntimeError(
                f"the thread-safe libfaketime is not built ({THREADSAFE_LIBRARY}): "
                "run `make test` (or `python -m testing.faketime --build`; it "
                "needs a C compiler: apt-get install gcc libc6-dev make)"
            )
        return THREADSAFE_LIBRARY
    path = _source().parent / "libfaketime.so.1"
    if not path.exists():
        raise RuntimeError(f"the libfaketime package has no {path.name} at {path}")
    return path


def _source() -> Path:
    """The libfaketime C source that the PyPI package vendors (and built from)."""
    try:
        import libfaketime
    except ImportError:
        raise RuntimeError(
            "the libfaketime package is missing: pip install -e '.[test]'"
        ) from None
    return Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.c"


def build_threadsafe_library(target: Path = THREADSAFE_LIBRARY) -> Path:
    """Compile `libfaketimeMT` from the package's vendored source into `target`,
    in a scratch copy (the package's own directory stays as installed)."""
    source = _source().parent
    with tempfile.TemporaryDirectory(prefix="cfx-libfaketime-") as scratch:
        build = Path(scratch) / "src"
        shutil.copytree(source, build, ignore=shutil.ignore_patterns("*.o", "*.so*"))
        subprocess.run(
            ["make", "--silent", "-C", str(build), "libfaketimeMT.so.1"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(build / "libfaketimeMT.so.1", partial)
        os.replace(partial, target)
    return target


def faketime_env(
    offset_s: float = 0.0,
    drift_ppm: float = 0.0,
    control: ClockControl | None = None,
) -> dict[str, str]:
    """Environment variables that shift a process's wall clock by `offset_s`.

    A drifting or steppable clock needs a drift origin the test knows, which only a
    `ClockControl` provides: pass `control` (which has its own offset and drift),
    not `drift_ppm` alone.
    """
    if control is not None:
        if offset_s or drift_ppm:
            raise ValueError("a ClockControl has its own offset_s and drift_ppm")
        return control.env
    if drift_ppm:
        raise ValueError(
            "a drifting clock's origin would be the endpoint's start, which the "
            "test does not know: use a ClockControl"
        )
    return {
        "LD_PRELOAD": str(library()),
        "FAKETIME": f"{offset_s:+.6f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


@dataclass(frozen=True)
class ClockStep:
    """A step of a `ClockControl`'s clock by `by_s`, made between two client times:
    a remote read before `before_ns` did not see it, one after `after_ns` did."""

    before_ns: int
    after_ns: int
    by_s: float


#: `struct ft_shared_s` of libfaketime's `faketime_common.h`: two uint64 counters,
#: then the start time of CLOCK_REALTIME, _MONOTONIC, _MONOTONIC_RAW, _BOOTTIME, as
#: `struct timespec`s (two int64 each on x86-64 and aarch64 Linux).
_SHARED = struct.Struct("=QQ8q")
_CLOCKS = (
    time.CLOCK_REALTIME,
    time.CLOCK_MONOTONIC,
    time.CLOCK_MONOTONIC_RAW,
    time.CLOCK_BOOTTIME,
)
_O_CREAT, _O_EXCL = os.O_CREAT, os.O_EXCL


class ClockControl:
    """One wall clock for every process of a site, drifting and steppable, whose
    truth the test knows: at client (real) time t,

        remote(t) = t + offset_s + drift_ppm * 1e-6 * (t - t0) + (steps before t)

    It owns a libfaketime shared memory segment (holding t0, its creation time,
    the origin of the drift for every process that inherits its `env`) and its
    semaphore, and with `steppable` a control file that `step` rewrites. Enter it
    (or `start` it) before starting the site, and leave it after the site stopped:
    a process started after it closed would take its own origin.

    `steppable=False` puts the spec in `FAKETIME` instead of a file: no file read
    per wall clock read, and no steps.
    """

    def __init__(
        self,
        offset_s: float = 0.0,
        drift_ppm: float = 0.0,
        steppable: bool = True,
        directory: Path | None = None,
        origin_before_s: float = 0.0,
    ) -> None:
        self.base_offset_s = offset_s
        #: t0 lies this long before `start`: a process started at once is
        #: already that far from the drift's origin (a test of the origin needs
        #: no wait).
        self.origin_before_ns = int(origin_before_s * 1e9)
        self.drift_ppm = drift_ppm
        self.rate = 1.0 + drift_ppm * 1e-6
        self.steppable = steppable
        self._directory = directory
        self._name = f"cfx_faketime_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        self._sem_name = f"/{self._name}_sem".encode()
        self._shm_path = Path("/dev/shm") / f"{self._name}_shm"
        self._file: Path | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self.steps: list[ClockStep] = []
        self.t0_ns: int | None = None

    # -- lifetime ------------------------------------------------------------

    def start(self) -> ClockControl:
        """Create the segment, its semaphore and the control file; t0 is now
        (less `origin_before_s`)."""
        if self.t0_ns is not None:
            raise RuntimeError("this ClockControl was started already")
        libc = _libc()
        handle = libc.sem_open(self._sem_name, _O_CREAT | _O_EXCL, 0o600, 1)
        if not handle:
            err = ctypes.get_errno()
            raise OSError(err, f"sem_open({self._sem_name.decode()}) failed")
        libc.sem_close(handle)
        starts = [
            time.clock_gettime_ns(clock) - self.origin_before_ns for clock in _CLOCKS
        ]
        self.t0_ns = starts[0]
        fields: list[int] = [0, 0]
        for ns in starts:
            fields += divmod(ns, 1_000_000_000)
        fd = os.open(self._shm_path, os.O_RDWR | _O_CREAT | _O_EXCL, 0o600)
        try:
            os.ftruncate(fd, 4096)  # a page: libfaketime maps the whole struct
            os.write(fd, _SHARED.pack(*fields))
        finally:
            os.close(fd)
        if self.steppable:
            if self._directory is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="cfx-faketime-")
                directory = Path(self._tmpdir.name)
            else:
                directory = self._directory
            self._file = directory / f"{self._name}.faketimerc"
            self._write(self.base_offset_s)
        return self

    def close(self) -> None:
        """Remove the segment, the semaphore and the control file."""
        if self.t0_ns is None:
            return
        _libc().sem_unlink(self._sem_name)
        self._shm_path.unlink(missing_ok=True)
        if self._file is not None:
            self._file.unlink(missing_ok=True)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    def __enter__(self) -> ClockControl:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what the site gets ----------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """The variables of a process (and its children) that runs this clock."""
        if self.t0_ns is None:
            raise RuntimeError("start the ClockControl before asking for its env")
        env = {
            "LD_PRELOAD": str(library(threadsafe=self._file is not None)),
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_SHARED": f"{self._sem_name.decode()} /{self._shm_path.name}",
        }
        if self._file is not None:
            env["FAKETIME_TIMESTAMP_FILE"] = str(self._file)
            env["FAKETIME_NO_CACHE"] = "1"
        else:
            env["FAKETIME"] = self._spec(self.base_offset_s)
        return env

    def step(self, by_s: float) -> ClockStep:
        """Step the clock by `by_s` now, in every process of the site at once."""
        if self._file is None:
            raise RuntimeError("this ClockControl is not steppable (or not started)")
        with self._lock:
            offset_s = self.offset_s + by_s
            before_ns = time.time_ns()
            self._write(offset_s)
            step = ClockStep(before_ns, time.time_ns(), by_s)
            self.steps.append(step)
        return step

    # -- the truth -------------------------------------------------------------

    @property
    def offset_s(self) -> float:
        """The offset at t0 with every step so far: the line's intercept now."""
        return self.base_offset_s + sum(step.by_s for step in self.steps)

    def true_offset_ns(self, t_client_ns: int) -> float:
        """remote - client (ns) at client time `t_client_ns` (a step counts from
        its `after_ns`; a time within a step's few microseconds is ambiguous)."""
        if self.t0_ns is None:
            raise RuntimeError("the ClockControl was never started")
        stepped_s = sum(s.by_s for s in self.steps if s.after_ns <= t_client_ns)
        return (self.base_offset_s + stepped_s) * 1e9 + (self.rate - 1.0) * (
            t_client_ns - self.t0_ns
        )

    def true_offset_s(self, t_client_s: float) -> float:
        """remote - client (s) at client time `t_client_s` (s since the epoch)."""
        return self.true_offset_ns(int(t_client_s * 1e9)) / 1e9

    def client_ns(self, t_remote_ns: int, not_before_ns: int | None = None) -> float:
        """The client time at which the remote clock read `t_remote_ns` (a stamp's
        true client time).

        After a step back by d, the remote clock reads the same values twice,
        d apart: `not_before_ns` (say, when the stamp's task was sent) picks the
        first reading at or after it; without it, the later one.
        """
        if self.t0_ns is None:
            raise RuntimeError("the ClockControl was never started")
        # Each stretch between steps is a line: remote = t + offset + (rate - 1)
        # (t - t0) from one step's after_ns to the next; solve it for t on each.
        edges = [s.after_ns for s in self.steps]
        readings = []
        offset_s = self.base_offset_s
        for index in range(len(edges) + 1):
            if index:
                offset_s += self.steps[index - 1].by_s
            # from t0 (ints subtracted first: ns since the epoch overflow a
            # float's precision)
            t = self.t0_ns + ((t_remote_ns - self.t0_ns) - offset_s * 1e9) / self.rate
            begins = edges[index - 1] if index else -math.inf
            ends = edges[index] if index < len(edges) else math.inf
            if begins <= t < ends:
                readings.append(t)
        if not readings:  # within a step's few microseconds: either side
            return t
        if not_before_ns is not None:
            later = [t for t in readings if t >= not_before_ns]
            if later:
                return min(later)
        return max(readings)

    # -- internals -------------------------------------------------------------

    def _spec(self, offset_s: float) -> str:
        # libfaketime's atof reads the offset; an m, h, d or y anywhere would be
        # taken as a unit, and an x introduces the rate.
        return f"{offset_s:+.9f} x{self.rate:.12f}"

    def _write(self, offset_s: float) -> None:
        """Replace the control file at once: a reader sees the old or the new."""
        assert self._file is not None
        partial = self._file.with_suffix(".partial")
        partial.write_text(self._spec(offset_s) + "\n")
        os.replace(partial, self._file)


_libc_handle: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """glibc's named semaphores (in libc itself since glibc 2.34)."""
    global _libc_handle
    if _libc_handle is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sem_open.restype = ctypes.c_void_p
        libc.sem_open.argtypes = [
            ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint
        ]  # fmt: skip
        libc.sem_close.argtypes = [ctypes.c_void_p]
        libc.sem_unlink.argtypes = [ctypes.c_char_p]
        _libc_handle = libc
    return _libc_handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the thread-safe libfaketime.")
    parser.add_argument("--build", action="store_true", help="build it if missing")
    parser.add_argument("--force", action="store_true", help="build it again")
    args = parser.parse_args(argv)
    if args.build and (args.force or not THREADSAFE_LIBRARY.exists()):
        print(f"building {THREADSAFE_LIBRARY}")
        build_threadsafe_library()
    print(library(threadsafe=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
