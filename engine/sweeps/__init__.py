"""Sweeps: grid specifications and parameter sweeps (windows, storage, process pool and Dask backends)."""
