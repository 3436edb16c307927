"""Test support for users of viveka_db."""
