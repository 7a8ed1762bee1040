"""Reporting: the report model and text/JSON rendering, HTML reports, charts (the only matplotlib user)."""
