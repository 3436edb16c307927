"""Example applications built on viveka_db."""
