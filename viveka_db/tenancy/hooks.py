"""Installing the tenancy hooks on the library's session class (the session layer calls it)."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from viveka_db.tenancy.filters import apply_row_filters
from viveka_db.tenancy.rls import set_transaction_tenant
from viveka_db.tenancy.writes import check_flush

__all__ = ["install_session_hooks"]


def install_session_hooks(session_class: type[Session]) -> None:
    """One read filter for every ORM statement, one write check for every flush, and the
    tenant of each new transaction for row-level security."""
    event.listen(session_class, "do_orm_execute", apply_row_filters)
    event.listen(session_class, "before_flush", check_flush)
    event.listen(session_class, "after_begin", set_transaction_tenant)
