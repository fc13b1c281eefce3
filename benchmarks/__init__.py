"""Assay's benchmarks: speed is measured, not asserted.

Each module measures one thing Assay claims to do faster and prints it side by side with a baseline measured in
the same run, on the same machine, with the same data: the way a simpler or earlier design did the same work.
A module exposes `run() -> list[Row]` (`benchmarks.common.Row`) and says in its docstring what it measures and
why its baseline is that one. `python -m benchmarks` (`make bench`) runs them all and prints one table each.
Nothing here asserts a figure: a regression shows up as a ratio, for a person to read.
"""
