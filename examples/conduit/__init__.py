"""Conduit: the RealWorld blogging API (users, profiles, articles, comments, tags) on viveka_db.

Run it with ``uvicorn examples.conduit.app:app`` from the repository root (SQLite by default;
set ``VIVEKA_DATABASE__URL`` for PostgreSQL or MariaDB). ``run_newman.py`` runs the RealWorld
project's Postman collection against it.
"""
