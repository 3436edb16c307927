"""The pytest plugin (entry point ``viveka_db`` in group ``pytest11``)."""
