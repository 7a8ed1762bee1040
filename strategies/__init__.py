"""Trading rules. Each module defines one or more ``Strategy`` subclasses; they are discovered by name.

A user strategy dropped into this folder (a module defining a ``Strategy`` subclass with a ``name``)
is found by ``evbt run NAME`` without registration. No backtrader here: rules only say which events,
which side, and when to exit; ``engine.execution.backtrader_driver`` does the rest.
"""
