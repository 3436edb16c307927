"""Stubs whose name is no derived query, and misspelt relationship paths, fail at class creation.

A ``...`` body on a repository means "implement me from my name"; a name that is not a
derived query (``get_by_name``, ``search_by_name``, ``fnd_by_name``) would quietly return
``None`` at run time, so the class is refused when it is created, with the valid prefixes.
"""

from __future__ import annotations

import abc
import types
from typing import Any, TypeVar

import pytest

from tests.repository.models import User
from tests.repository.rel_models import Article
from viveka_db import DbRepo, DerivedQueryError, EntityDefinitionError, VivekaDbBase

PREFIXES = ("find_by_", "find_first_by_", "find_top_<N>_by_", "find_all_by_", "count_by_")


def _make(methods: dict[str, Any], base: type = DbRepo[User]) -> type:
    return types.new_class("Broken", (base,), exec_body=lambda ns: ns.update(methods))


def _compile(source: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return next(v for k, v in namespace.items() if k != "__builtins__")


@pytest.mark.parametrize(
    ("source", "suggestion"),
    [
        ("async def get_by_name(self, name): ...", None),
        ("async def search_by_name(self, name): ...", None),
        ("async def fnd_by_name(self, name): ...", "did you mean find_by_name?"),
        ("async def find_al_by_name(self, name): ...", "did you mean find_all_by_name?"),
        ("async def get_by_name(self, name):\n    '''Doc.'''\n    ...", None),
        ("async def get_by_name(self, name):\n    pass", None),
        ("async def get_by_name(self, name):\n    '''Only a docstring.'''", None),
        ("async def get_by_id(self, id): ...", None),  # would shadow the real method
    ],
)
def test_a_stub_whose_name_is_no_derived_query_fails_at_class_creation(
    source: str, suggestion: str | None
) -> None:
    fn = _compile(source)
    with pytest.raises(DerivedQueryError) as caught:
        _make({fn.__name__: fn})
    message = str(caught.value)
    assert f"Broken.{fn.__name__}" in message
    for prefix in PREFIXES:
        assert prefix in message
    if suggestion is not None:
        assert suggestion in message
    assert isinstance(caught.value, EntityDefinitionError)


def test_real_bodies_private_and_abstract_stubs_are_left_alone() -> None:
    class Fine(DbRepo[User]):
        async def get_by_name(self, name: str) -> User | None:
            return await self.find_by(name=name)

        async def deliberately_empty(self) -> None:
            return None

        async def _hook(self) -> None:
            pass

        def sync_helper(self) -> None: ...

    assert Fine.get_by_name.__qualname__.endswith("Fine.get_by_name")

    T = TypeVar("T", bound=VivekaDbBase)

    class Base(DbRepo[T], abc.ABC):
        @abc.abstractmethod
        async def search(self, text: str) -> list[T]: ...

    class Concrete(Base[User]):
        async def search(self, text: str) -> list[User]:
            return []

    assert Concrete is not None


def test_a_generic_base_with_a_misnamed_stub_fails_too() -> None:
    T = TypeVar("T", bound=VivekaDbBase)
    with pytest.raises(DerivedQueryError, match="get_by_slug"):

        class Base(DbRepo[T]):
            async def get_by_slug(self, slug: str) -> T | None: ...


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the relationship is right, its attribute misspelt: the related entity's attributes
        ("find_all_by_author_usrname", "Article.author leads to Author, whose attributes are: id"),
        # the relationship misspelt: the closest one and its entity's attributes
        ("find_all_by_autor_username", "did you mean 'author'? Article.author leads to Author"),
        # two steps deep
        ("find_all_by_author_profile_boi", "Article.author.profile leads to Profile"),
    ],
)
def test_a_misspelt_relationship_path_names_the_related_attributes(
    name: str, expected: str
) -> None:
    fn = _compile(f"async def {name}(self, value): ...")
    with pytest.raises(DerivedQueryError) as caught:
        _make({name: fn}, DbRepo[Article])
    message = str(caught.value)
    assert expected in message
    if "profile" in name:
        assert "bio" in message
    else:
        assert "username" in message  # Author's attribute, listed
    assert "title" in message  # and still Article's own
