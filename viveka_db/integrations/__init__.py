"""Integrations with web frameworks (each needs its extra, e.g. ``viveka-db[fastapi]``)."""
