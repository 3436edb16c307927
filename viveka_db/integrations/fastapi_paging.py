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
import typing
from dataclasses import dataclass, field, make_dataclass
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
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
P = TypeVar("P")

_SORT_DESCRIPTION = (
    "Comma-separated field names, '-' before a name for descending (e.g. '-created_at,name'); "
    "the primary key breaks ties."
)


def _sort_list(sort: str | None, sortable: tuple[str, ...] | None) -> list[str] | None:
    """The names of ``?sort=``; a 422 for a name outside ``sortable`` (which it never echoes:
    the answer lists what can be sorted, nothing else)."""
    if sort is None:
        return None
    names = [part.strip() for part in sort.split(",") if part.strip()]
    if sortable is not None:
        for name in names:
            if name.lstrip("+-") not in sortable:
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("query", "sort"),
                            "msg": f"unknown or unsortable field; sortable fields: "
                            f"{', '.join(sortable)} ('-' before a name for descending)",
                            "input": None,
                        }
                    ]
                )
    return names or None


def _narrowed(cls: type[P], given: tuple[object, ...]) -> type[P]:
    names = tuple(name for name in given if isinstance(name, str) and name)
    if not names or len(names) != len(given):
        raise TypeError(f"sortable_by() takes one or more field names, got {given!r}")
    description = f"{_SORT_DESCRIPTION} Sortable fields: {', '.join(names)}."
    sort_field = Annotated[str | None, Query(description=description)]
    narrowed = make_dataclass(
        f"{cls.__name__}SortableBy",
        [("sort", sort_field, field(default=None))],
        bases=(cls,),
        namespace={"sortable": names},
    )
    return typing.cast("type[P]", narrowed)


@dataclass
class PageParams:
    """``params: Annotated[PageParams, Depends()]``: ``?page=2&size=20&sort=-created_at``.

    Pass them on with ``await repo.get_page(**params.kwargs())``. ``sortable`` (a class
    attribute of a subclass, or :meth:`sortable_by`) narrows what ``?sort=`` may name,
    answered with a 422 before the endpoint runs; the repository's own ``sortable`` and
    the columns' types narrow it further.
    """

    sortable: ClassVar[tuple[str, ...] | None] = None
    """The field names ``?sort=`` may name (``None``: whatever the repository accepts)."""

    page: Annotated[int, Query(ge=1, le=2**31, description="Page number, from 1.")] = 1
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 20
    sort: Annotated[str | None, Query(description=_SORT_DESCRIPTION)] = None

    def __post_init__(self) -> None:
        self._sort = _sort_list(self.sort, self.sortable)

    @classmethod
    def sortable_by(cls, *names: str) -> type[Self]:
        """This dependency with ``?sort=`` limited to ``names`` (listed in OpenAPI too):
        ``Annotated[PageParams, Depends(PageParams.sortable_by("name", "created_at"))]``."""
        return _narrowed(cls, names)

    def kwargs(self) -> dict[str, Any]:
        """``page``, ``size`` and ``sort`` as :meth:`~viveka_db.DbRepo.get_page` takes them."""
        return {"page": self.page, "size": self.size, "sort": self._sort}


@dataclass
class SliceParams:
    """``params: Annotated[SliceParams, Depends()]``: ``?after=<cursor>&size=20&sort=name``.

    Pass them on with ``await repo.get_slice(**params.kwargs())``. ``sortable`` narrows
    ``?sort=`` as in :class:`PageParams`.
    """

    sortable: ClassVar[tuple[str, ...] | None] = None
    """The field names ``?sort=`` may name (``None``: whatever the repository accepts)."""

    after: Annotated[
        str | None, Query(description="The next_cursor of the previous slice; empty: the first.")
    ] = None
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per slice.")] = 20
    sort: Annotated[str | None, Query(description=_SORT_DESCRIPTION)] = None

    def __post_init__(self) -> None:
        self._sort = _sort_list(self.sort, self.sortable)

    @classmethod
    def sortable_by(cls, *names: str) -> type[Self]:
        """This dependency with ``?sort=`` limited to ``names`` (as ``PageParams.sortable_by``)."""
        return _narrowed(cls, names)

    def kwargs(self) -> dict[str, Any]:
        """``after``, ``size`` and ``sort`` as :meth:`~viveka_db.DbRepo.get_slice` takes them."""
        return {"after": self.after or None, "size": self.size, "sort": self._sort}


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
