"""A small FastAPI shop: users and orders, with decorators, middleware, cache and background tasks.

Run it with ``uvicorn examples.shop.app:app`` from the repository root (SQLite by default;
set ``VIVEKA_DATABASE__URL`` for PostgreSQL or MySQL, ``VIVEKA_CACHE__URL`` for Redis).
"""
