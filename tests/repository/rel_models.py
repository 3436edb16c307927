"""Entities with relationships (tables ``repo_rel_*``), Conduit-style.

``Author`` 1-1 ``Profile``; ``Author`` 1-n ``Article`` (versioned); ``Article`` 1-n
``Comment`` (soft delete); ``Article`` n-m ``Tag``. Foreign keys cascade in the database,
which is what a bulk ``delete_by`` relies on. Relationships name their classes by object,
never by string: other modules (the docs' example) map classes of the same names.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from viveka_db import (
    DbRepo,
    IntPKMixin,
    SoftDeleteMixin,
    VersionMixin,
    VivekaDbBase,
    current_session,
    entity,
    table,
    transactional,
)

article_tags = Table(
    "repo_rel_article_tags",
    VivekaDbBase.metadata,
    Column("article_id", ForeignKey("repo_rel_articles.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("repo_rel_tags.id", ondelete="CASCADE"), primary_key=True),
)


@entity
@table("repo_rel_authors")
class Author(VivekaDbBase, IntPKMixin):
    username: Mapped[str] = mapped_column(String(80), unique=True)
    profile: Mapped[Profile | None] = relationship(lambda: Profile, back_populates="author")
    articles: Mapped[list[Article]] = relationship(
        lambda: Article, back_populates="author", order_by=lambda: Article.id, passive_deletes=True
    )


@entity
@table("repo_rel_profiles")
class Profile(VivekaDbBase, IntPKMixin):
    author_id: Mapped[int] = mapped_column(
        ForeignKey("repo_rel_authors.id", ondelete="CASCADE"), unique=True
    )
    bio: Mapped[str] = mapped_column(String(200), default="")
    author: Mapped[Author] = relationship(lambda: Author, back_populates="profile")


@entity
@table("repo_rel_tags")
class Tag(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(40), unique=True)


@entity
@table("repo_rel_articles")
class Article(VivekaDbBase, IntPKMixin, VersionMixin):
    title: Mapped[str] = mapped_column(String(120))
    views: Mapped[int] = mapped_column(default=0)
    author_id: Mapped[int] = mapped_column(ForeignKey("repo_rel_authors.id", ondelete="CASCADE"))
    author: Mapped[Author] = relationship(lambda: Author, back_populates="articles")
    comments: Mapped[list[Comment]] = relationship(
        lambda: Comment, back_populates="article", order_by=lambda: Comment.id, passive_deletes=True
    )
    tags: Mapped[list[Tag]] = relationship(
        lambda: Tag, secondary=article_tags, order_by=Tag.name, passive_deletes=True
    )


@entity
@table("repo_rel_comments")
class Comment(VivekaDbBase, IntPKMixin, SoftDeleteMixin):
    body: Mapped[str] = mapped_column(String(200))
    article_id: Mapped[int] = mapped_column(ForeignKey("repo_rel_articles.id", ondelete="CASCADE"))
    article: Mapped[Article] = relationship(lambda: Article, back_populates="comments")


class AuthorRepo(DbRepo[Author]):
    pass


class ArticleRepo(DbRepo[Article]):
    pass


class CommentRepo(DbRepo[Comment]):
    pass


class TagRepo(DbRepo[Tag]):
    pass


async def seed(authors: int = 20, *, per_author: int = 2) -> list[Article]:
    """``authors`` authors (``user00``...) with a profile, ``per_author`` articles each,
    two comments per article and two of the tags ``python``, ``sql``, ``async``, ``orm``."""
    tags = await TagRepo().insert_all(
        [Tag(name=name) for name in ("python", "sql", "async", "orm")]
    )
    people = await AuthorRepo().insert_all(
        [Author(username=f"user{i:02d}") for i in range(authors)]
    )
    await DbRepo(Profile).insert_all(
        [Profile(author_id=a.id, bio=f"bio of {a.username}") for a in people]
    )
    articles = [
        Article(title=f"{a.username} post {n}", views=n * 10, author_id=a.id)
        for a in people
        for n in range(per_author)
    ]
    articles = await ArticleRepo().insert_all(articles)
    await CommentRepo().insert_all(
        [
            Comment(body=f"comment {c} on {a.title}", article_id=a.id)
            for a in articles
            for c in range(2)
        ]
    )
    rows = [
        {"article_id": a.id, "tag_id": tags[(i + k) % len(tags)].id}
        for i, a in enumerate(articles)
        for k in range(2)
    ]

    @transactional
    async def link() -> None:
        await current_session().execute(article_tags.insert(), rows)

    await link()
    return articles
