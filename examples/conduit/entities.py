"""The entities: users follow users, write articles (tagged, favorited) and comment on them.

No ``from __future__ import annotations`` here: ``Mapped[User]`` must name this module's
class, not whichever ``User`` the shared registry of ``VivekaDbBase`` finds by name (the shop
example has one too).
"""

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from viveka_db import IntPKMixin, TimestampMixin, VivekaDbBase, entity, table

article_tags = Table(
    "conduit_article_tags",
    VivekaDbBase.metadata,
    Column("article_id", ForeignKey("conduit_articles.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("conduit_tags.id", ondelete="CASCADE"), primary_key=True),
)


@entity
@table("conduit_users")
class User(VivekaDbBase, IntPKMixin, TimestampMixin):
    username: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    bio: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str | None] = mapped_column(String(500), default=None)


@entity
@table("conduit_follows")
class Follow(VivekaDbBase):
    follower_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_users.id", ondelete="CASCADE"), primary_key=True
    )
    followed_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_users.id", ondelete="CASCADE"), primary_key=True
    )


@entity
@table("conduit_tags")
class Tag(VivekaDbBase, IntPKMixin):
    name: Mapped[str] = mapped_column(String(100), unique=True)


@entity
@table("conduit_articles")
class Article(VivekaDbBase, IntPKMixin, TimestampMixin):
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("conduit_users.id", ondelete="CASCADE"))
    author: Mapped[User] = relationship()
    tags: Mapped[list[Tag]] = relationship(secondary=article_tags)
    # who favorited it: read through the favorites table, written as Favorite rows
    favorited_by: Mapped[list[User]] = relationship(secondary="conduit_favorites", viewonly=True)


@entity
@table("conduit_favorites")
class Favorite(VivekaDbBase):
    user_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_users.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )


@entity
@table("conduit_comments")
class Comment(VivekaDbBase, IntPKMixin, TimestampMixin):
    body: Mapped[str] = mapped_column(Text)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("conduit_articles.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("conduit_users.id", ondelete="CASCADE"))
    author: Mapped[User] = relationship()
