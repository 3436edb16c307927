"""``python -m viveka_db.cli``: the same as the ``viveka-db`` console script."""

from viveka_db.cli.main import main

main()
