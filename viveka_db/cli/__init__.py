"""The ``viveka-db`` command line (needs the ``cli`` extra: ``pip install "viveka-db[cli]"``)."""
