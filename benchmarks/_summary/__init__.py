"""The parts of `benchmarks/summary_scale.py`.

- `runs`: a realistic run directory of N tasks, written line by line as the
  federation's journal writes them
- `paths`: the compared ways of reading it, each run in a fresh subprocess
"""
