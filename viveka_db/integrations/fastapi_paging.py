"""Paging for FastAPI: query-parameter dependencies and generic response models.

``PageParams``/``SliceParams`` read ``?page=&size=&sort=`` / ``?after=&size=&sort=`` with
their limits declared, so OpenAPI documents them and FastAPI answers a bad value with 422
before the endpoint runs. ``Page[Schema]``/``Slice[Schema]`` are pydantic models of a
repository's :class:`~viveka_db.Page`/:class:`~viveka_db.Slice` with the items converted to
``Schema``; build them with ``Page[UserRead].of(page)``, or return the repository's page
from an endpoint declared with ``response_model=Page[UserRead]``.
"""

# No ``from __future__ import annotations`` here: FastAPI 0.110 (our floor) cannot resolve
# a class dependency's string annotations (``PageParams``' ``Annotated[int, Query(...)]``).
import math
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Self, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, computed_field

from viveka_db.repository.pagination import Page as RepositoryPage
from viveka_db.repository.pagination import Slice as RepositorySlice

__all__ = [
    "MAX_PAGE_SIZE",
    "Page",
    "PageDep",
    "PageParams",
    "Slice",
    "SliceDep",
    "SliceParams",
]

MAX_PAGE_SIZE = 100
"""The largest ``size`` the query-string dependencies accept (clients choose it)."""

S = TypeVar("S")

_SORT_DESCRIPTION = (
    "Comma-separated field names, '-' before a name for descending (e.g. '-created_at,name'); "
    "the primary key breaks ties."
)


def _sort_list(sort: str | None) -> list[str] | None:
    if sort is None:
        return None
    return [part.strip() for part in sort.split(",") if part.strip()] or None


@dataclass
class PageParams:
    """``params: Annotated[PageParams, Depends()]``: ``?page=2&size=20&sort=-created_at``.

    Pass them on with ``await repo.get_page(**params.kwargs())``.
    """

    page: Annotated[int, Query(ge=1, le=2**31, description="Page number, from 1.")] = 1
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 20
    sort: Annotated[str | None, Query(description=_SORT_DESCRIPTION)] = None

    def kwargs(self) -> dict[str, Any]:
        """``page``, ``size`` and ``sort`` as :meth:`~viveka_db.DbRepo.get_page` takes them."""
        return {"page": self.page, "size": self.size, "sort": _sort_list(self.sort)}


@dataclass
class SliceParams:
    """``params: Annotated[SliceParams, Depends()]``: ``?after=<cursor>&size=20&sort=name``.

    Pass them on with ``await repo.get_slice(**params.kwargs())``.
    """

    after: Annotated[
        str | None, Query(description="The next_cursor of the previous slice; empty: the first.")
    ] = None
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per slice.")] = 20
    sort: Annotated[str | None, Query(description=_SORT_DESCRIPTION)] = None

    def kwargs(self) -> dict[str, Any]:
        """``after``, ``size`` and ``sort`` as :meth:`~viveka_db.DbRepo.get_slice` takes them."""
        return {"after": self.after or None, "size": self.size, "sort": _sort_list(self.sort)}


PageDep = Annotated[PageParams, Depends()]
"""``params: PageDep`` in an endpoint: the paging query parameters."""

SliceDep = Annotated[SliceParams, Depends()]
"""``params: SliceDep`` in an endpoint: the keyset-slice query parameters."""


class Page(BaseModel, Generic[S]):
    """A page of ``S`` in a response: ``response_model=Page[UserRead]``."""

    model_config = ConfigDict(from_attributes=True)

    items: list[S]
    total: int
    page: int
    size: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pages(self) -> int:
        """How many pages ``total`` items make (0 when there are none)."""
        return math.ceil(self.total / self.size) if self.size else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @classmethod
    def of(cls, page: RepositoryPage[Any]) -> Self:
        """Convert a repository page (entities become ``S`` through their attributes)."""
        return cls.model_validate(page, from_attributes=True)


class Slice(BaseModel, Generic[S]):
    """A keyset slice of ``S`` in a response: ``response_model=Slice[UserRead]``."""

    model_config = ConfigDict(from_attributes=True)

    items: list[S]
    next_cursor: str | None
    size: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @classmethod
    def of(cls, slice_: RepositorySlice[Any]) -> Self:
        """Convert a repository slice (entities become ``S`` through their attributes)."""
        return cls.model_validate(slice_, from_attributes=True)
