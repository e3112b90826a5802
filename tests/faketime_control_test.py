"""The test suite's drifting and steppable fake clocks, against their own truth.

A site's endpoint and all its workers must see one clock, `remote(t) = t + offset +
drift * (t - t0) + steps`, with `t0` the test's: so every process here (the faked
one, a forked, a spawned and an exec'd child) reads its wall clock beside the
monotonic clock, which libfaketime leaves alone and which is the same for every
process on the machine, and the test turns each monotonic reading into its own
(real) time. The drifts are large (percent) so that a process taking the drift's
origin from its own start (a tenth of a second or more after `t0`) would be off
by a millisecond or more, well beyond the tolerance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.faketime import ClockControl
from testing.faketime import faketime_env
from testing.wait import wait_until

#: A wall clock read costs up to a few tens of microseconds with a control file
#: (it is read each time), and the process may be preempted between the readings.
TOLERANCE_NS = 500_000
#: A wall clock reading bracketed by monotonic ones further apart than this was
#: preempted: it says little about when it was taken, and is left out.
BRACKET_NS = 200_000

#: Samples its own clock and those of a forked, a spawned and an exec'd child; or,
#: given `sample DIR THREADS`, it and a forked and a spawned child sample, each in
#: THREADS threads, until DIR/stop appears, into DIR/<pid>.json.
_PROBE = r"""
import json, multiprocessing as mp, os, subprocess, sys, threading, time

def sample(tries=5):
    best = None
    for _ in range(tries):  # the closest bracket: not preempted in between
        m1 = time.monotonic_ns(); wall = time.time_ns(); m2 = time.monotonic_ns()
        if best is None or m2 - m1 < best[2]:
            best = [(m1 + m2) // 2, wall, m2 - m1]
    return best

def keep_sampling(directory, threads):
    # In `threads` threads at once (a site's processes have many, and a stepped
    # clock must hold in each) until DIR/stop appears; DIR/<pid>.count: how many.
    samples, lock = [], threading.Lock()
    stop = os.path.join(directory, "stop")
    count = os.path.join(directory, f"{os.getpid()}.count")
    def run():
        while not os.path.exists(stop):
            for _ in range(20):
                taken = sample(1)
                with lock:
                    samples.append(taken)
            with lock:
                with open(count + ".partial", "w") as out:
                    out.write(str(len(samples)))
                os.replace(count + ".partial", count)
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as out:
        json.dump(samples, out)

def report(queue):
    queue.put(sample())

if __name__ == "__main__":
    if sys.argv[1] == "one":
        print(json.dumps([sample()]))
    elif sys.argv[1] == "children":
        samples = [sample()]
        for method in ("fork", "spawn"):
            ctx = mp.get_context(method)
            queue = ctx.Queue()
            child = ctx.Process(target=report, args=(queue,))
            child.start()
            samples.append(queue.get(timeout=30))
            child.join()
        exec_child = subprocess.run([sys.executable, __file__, "one"], check=True,
                                    capture_output=True, text=True)
        samples += json.loads(exec_child.stdout)
        samples.append(sample())
        print(json.dumps(samples))
    else:
        directory, threads = sys.argv[2], int(sys.argv[3])
        children = [mp.get_context(method).Process(
                        target=keep_sampling, args=(directory, threads))
                    for method in ("fork", "spawn")]
        for child in children:
            child.start()
        keep_sampling(directory, threads)
        for child in children:
            child.join()
"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(_PROBE)
    return path


def _real_minus_monotonic_ns() -> int:
    """This (unfaked) process's wall clock minus the machine's monotonic clock."""
    best: tuple[int, int] | None = None
    for _ in range(100):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) // 2)
    assert best is not None
    return best[1]


def _errors_ns(clock: ClockControl, samples: list[list[int]]) -> list[float]:
    """Each sample's wall clock reading minus what the clock's truth says it is."""
    shift = _real_minus_monotonic_ns()
    errors = []
    for monotonic_ns, wall_ns, took_ns in samples:
        assert took_ns < BRACKET_NS, "preempted in each of its tries"
        real_ns = monotonic_ns + shift
        errors.append(wall_ns - real_ns - clock.true_offset_ns(real_ns))
    return errors


def _run(
    probe: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(probe), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.parametrize("steppable", [False, True], ids=["env", "file"])
@pytest.mark.parametrize(("offset_s", "drift_ppm"), [(3.0, 20_000), (-2.5, -10_000)])
def test_every_process_of_a_site_sees_one_drifting_clock(
    probe: Path, offset_s: float, drift_ppm: float, steppable: bool
) -> None:
    # t0 a tenth of a second back: a process taking its own start as the origin
    # would be off by a millisecond or more
    with ClockControl(
        offset_s, drift_ppm, steppable=steppable, origin_before_s=0.1
    ) as clock:
        samples = json.loads(_run(probe, clock.env, "children").stdout)
        errors = _errors_ns(clock, samples)
    assert len(errors) == 5  # the process, its fork, its spawn, its exec'd child
    assert max(map(abs, errors)) < TOLERANCE_NS, errors


def _counts(directory: Path) -> dict[str, int]:
    """Samples taken so far per sampling process."""
    counts = {}
    for path in directory.glob("*.count"):
        text = path.read_text()
        counts[path.stem] = int(text) if text else 0
    return counts


def _sampled_more(directory: Path, since: dict[str, int], by: int) -> bool:
    now = _counts(directory)
    return len(now) == 3 and all(now[pid] >= since.get(pid, 0) + by for pid in now)


#: Samples each process takes in each phase (before, between and after the steps).
PHASE_SAMPLES = 200


def test_a_step_moves_every_process_at_once_and_keeps_the_drift(
    probe: Path, tmp_path: Path
) -> None:
    # Four threads per process: the stock libfaketime gives unfaked readings now
    # and then when threads re-read the control file at once.
    with ClockControl(1.0, 20_000) as clock:
        site = subprocess.Popen(
            [sys.executable, str(probe), "sample", str(tmp_path), "4"],
            env={**os.environ, **clock.env},
        )
        try:
            phases: list[dict[str, int]] = [{}]
            for by_s in (0.005, -0.020):
                wait_until(
                    lambda: _sampled_more(tmp_path, phases[-1], PHASE_SAMPLES),
                    60,
                    "samples of every process before the step",
                )
                phases.append(_counts(tmp_path))
                clock.step(by_s)
            wait_until(
                lambda: _sampled_more(tmp_path, phases[-1], PHASE_SAMPLES),
                60,
                "samples of every process after the steps",
            )
            (tmp_path / "stop").touch()
            assert site.wait(timeout=60) == 0
        finally:
            site.kill()
            site.wait()
        up, down = clock.steps
        assert clock.offset_s == pytest.approx(1.0 - 0.015)
        shift = _real_minus_monotonic_ns()
        per_process = [json.loads(path.read_text()) for path in tmp_path.glob("*.json")]
        assert len(per_process) == 3
        for samples in per_process:
            seen = {"before": 0, "between": 0, "after": 0}
            for monotonic_ns, wall_ns, took_ns in samples:
                if took_ns > BRACKET_NS:
                    continue
                real_ns = monotonic_ns + shift
                near = [step for step in (up, down)
                        if step.before_ns - took_ns - TOLERANCE_NS <= real_ns
                        <= step.after_ns + took_ns + TOLERANCE_NS]  # fmt: skip
                if near:  # read while the control file was replaced: either
                    continue
                error = wall_ns - real_ns - clock.true_offset_ns(real_ns)
                assert abs(error) < TOLERANCE_NS, (real_ns, error)
                if real_ns < up.before_ns:
                    seen["before"] += 1
                elif real_ns < down.before_ns:
                    seen["between"] += 1
                else:
                    seen["after"] += 1
            assert min(seen.values()) > 10, seen  # every phase was sampled


def test_the_truth_is_the_line_and_the_steps() -> None:
    with ClockControl(2.0, 100.0) as clock:
        assert clock.t0_ns is not None
        t0 = clock.t0_ns
        assert clock.true_offset_ns(t0) == pytest.approx(2e9)
        # 100 ppm over 10 s: 1 ms more
        assert clock.true_offset_s((t0 + 10_000_000_000) / 1e9) == pytest.approx(
            2.001, abs=1e-6
        )
        step = clock.step(-0.020)
        assert clock.true_offset_ns(step.before_ns - 1) == pytest.approx(
            2e9 + 100e-6 * (step.before_ns - 1 - t0)
        )
        later = step.after_ns + 1_000_000_000
        assert clock.true_offset_ns(later) == pytest.approx(
            1.98e9 + 100e-6 * (later - t0)
        )
        remote = later + clock.true_offset_ns(later)
        assert clock.client_ns(int(remote)) == pytest.approx(later, abs=1_000)
        # Just after the step back, the remote clock reads what it read 20 ms
        # before: both are its readings, the hint tells which is meant.
        soon = step.after_ns + 5_000_000
        remote = soon + clock.true_offset_ns(soon)
        assert clock.client_ns(int(remote)) == pytest.approx(soon, abs=1_000)
        earlier = soon - 20_000_000 / clock.rate
        assert clock.client_ns(int(remote), not_before_ns=soon - 30_000_000) == (
            pytest.approx(earlier, abs=1_000)
        )
        assert clock.client_ns(int(remote), not_before_ns=step.after_ns) == (
            pytest.approx(soon, abs=1_000)
        )


def test_the_clock_leaves_nothing_behind() -> None:
    before = set(os.listdir("/dev/shm"))
    with ClockControl(1.0, 5.0) as clock:
        control = Path(clock.env["FAKETIME_TIMESTAMP_FILE"])
        assert control.read_text().startswith("+1.000000000 x1.000005")
        assert set(os.listdir("/dev/shm")) > before
    assert set(os.listdir("/dev/shm")) == before
    assert not control.exists()


def test_a_drift_needs_a_clock_control() -> None:
    with pytest.raises(ValueError, match="ClockControl"):
        faketime_env(1.0, drift_ppm=100)
    assert faketime_env(3.0)["FAKETIME"] == "+3.000000"
    with ClockControl(1.0, steppable=False) as clock:
        assert faketime_env(control=clock) == clock.env
        with pytest.raises(ValueError, match="its own"):
            faketime_env(1.0, control=clock)
