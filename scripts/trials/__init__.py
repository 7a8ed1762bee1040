"""Reliability trials behind scripts/reliability.py (one module per kind of trial)."""
