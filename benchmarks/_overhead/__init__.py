"""The parts of `benchmarks/overhead.py`, one concept per module.

- `paths`: the two ways of running a no-op task (raw engine, thinker + federation)
- `thinkers`: the Colmena-style thinkers that drive path B
- `measure`: both paths started, warmed up, then measured in alternating rounds
- `figures`: each path's figures per round, and the B/A ratios per round
- `taskstore`: path B's bursts with the task store and with a no-op stand-in
- `storecalls`: the task store's calls timed directly, with and without fsyncs
- `recordercalls`: the latency recorder's cost per task, previous clocks
  (`previousclocks`) versus current, and its deferred cost
- `idle`: `--idle-check`, what the idle path costs the one being measured
- `cpu`: CPU time per process and per client thread during the bursts
- `threads`: a hook around every thread started in a block (for `cpu`, `profiling`)
- `profiling`: the `--profile` phase, cProfile per client thread
- `report`: the human-readable tables
- `machine`: what the run ran on, for comparing runs
"""

from __future__ import annotations
