"""The RealWorld JSON shapes: camelCase on the wire, each answer wrapped in its envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

# RealWorld's clients expect milliseconds and a zone: 2026-12-01T15:35:02.123Z
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda at: at.isoformat(timespec="milliseconds").replace("+00:00", "Z")),
]
Text = Annotated[str, Field(min_length=1)]


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class NewUser(BaseModel):
    username: Text
    email: Text
    password: Text


class Login(BaseModel):
    email: str
    password: str


class UserChanges(BaseModel):
    username: Text | None = None
    email: Text | None = None
    password: Text | None = None
    bio: str | None = None
    image: str | None = None


class UserOut(Camel):
    email: str
    token: str
    username: str
    bio: str
    image: str | None


class ProfileOut(Camel):
    username: str
    bio: str
    image: str | None
    following: bool = False


class NewArticle(Camel):
    title: Text
    description: Text
    body: Text
    tag_list: list[str] = []


class ArticleChanges(Camel):
    title: Text | None = None
    description: str | None = None
    body: str | None = None


class ArticleOut(Camel):
    slug: str
    title: str
    description: str
    body: str
    tag_list: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    favorited: bool
    favorites_count: int
    author: ProfileOut


class NewComment(BaseModel):
    body: Text


class CommentOut(Camel):
    id: int
    body: str
    created_at: Timestamp
    updated_at: Timestamp
    author: ProfileOut


class UserEnvelope(BaseModel):
    user: UserOut


class ProfileEnvelope(BaseModel):
    profile: ProfileOut


class ArticleEnvelope(BaseModel):
    article: ArticleOut


class ArticlesEnvelope(Camel):
    articles: list[ArticleOut]
    articles_count: int


class CommentEnvelope(BaseModel):
    comment: CommentOut


class CommentsEnvelope(BaseModel):
    comments: list[CommentOut]


class TagsEnvelope(BaseModel):
    tags: list[str]
