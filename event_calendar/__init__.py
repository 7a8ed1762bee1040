"""evbt's curated event calendar: data files only (events.csv, closures.csv, README.md).

A package so that the files ship inside the wheel; read them through ``engine.paths.calendar_dir()``.
"""
