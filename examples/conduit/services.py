"""Services: each write is one ``@transactional`` method; reads batch their lookups."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from sqlalchemy import select

from examples.conduit.auth import hash_password, password_matches
from examples.conduit.entities import Article, Comment, Favorite, Follow, User
from examples.conduit.repositories import (
    ArticleRepo,
    Author,
    CommentRepo,
    FavoriteRepo,
    FollowRepo,
    TagRepo,
    UserRepo,
)
from examples.conduit.schemas import (
    ArticleChanges,
    ArticleOut,
    CommentOut,
    NewArticle,
    NewUser,
    ProfileOut,
    UserChanges,
)
from viveka_db import EntityNotFoundError, Spec, cache_evict, transactional

users, follows, tags = UserRepo(), FollowRepo(), TagRepo()
articles, favorites, comments = ArticleRepo(), FavoriteRepo(), CommentRepo()


def profile_of(user: User | Author, following: bool) -> ProfileOut:
    return ProfileOut.model_validate(user).model_copy(update={"following": following})


async def followed_among(viewer: User | None, ids: Iterable[int]) -> set[int]:
    """Which of the users ``ids`` the viewer follows: one query for a whole page."""
    if viewer is None:
        return set()
    found = await follows.find_all_by_follower_id_and_followed_id_in(viewer.id, list(set(ids)))
    return {follow.followed_id for follow in found}


class UserService:
    @transactional
    async def register(self, new: NewUser) -> User:
        user = User(username=new.username, email=new.email)
        user.password_hash = hash_password(new.password)
        return await users.save(user)  # a taken username or email: DuplicateKeyError

    async def login(self, email: str, password: str) -> User | None:
        user = await users.find_by_email(email)
        return user if user and password_matches(password, user.password_hash) else None

    @transactional
    @cache_evict(key_prefix="conduit-profile", key="{user.username}")  # the name before the call
    async def update(self, user: User, changes: UserChanges) -> User:
        values = changes.model_dump(exclude_none=True)
        if "password" in values:
            values["password_hash"] = hash_password(values.pop("password"))
        for name, value in values.items():
            setattr(user, name, value)
        return await users.save(user)


class ProfileService:
    async def get(self, viewer: User | None, username: str) -> ProfileOut:
        author = await self._author(username)
        return profile_of(author, author.id in await followed_among(viewer, [author.id]))

    @transactional
    async def follow(self, viewer: User, username: str, follow: bool) -> ProfileOut:
        author = await self._author(username)
        if follow:
            row = {"follower_id": viewer.id, "followed_id": author.id}
            await follows.upsert_all([row], on_conflict="nothing")
        else:
            await follows.delete_by_follower_id_and_followed_id(viewer.id, author.id)
        return profile_of(author, follow)

    async def _author(self, username: str) -> Author:
        author = await users.profile(username)  # cached
        if author is None:
            raise EntityNotFoundError(User, username)
        return author


def slugify(title: str) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}-{secrets.token_hex(3)}"


class ArticleService:
    async def views(self, viewer: User | None, found: list[Article]) -> list[ArticleOut]:
        """The articles as the viewer sees them: three queries however many there are."""
        ids = [article.id for article in found]
        counts = await favorites.count_grouped_by(
            Favorite.article_id, favorites.where(Favorite.article_id.in_(ids))
        )
        mine: set[int] = set()
        if viewer is not None and ids:
            faved = await favorites.find_all_by_user_id_and_article_id_in(viewer.id, ids)
            mine = {favorite.article_id for favorite in faved}
        following = await followed_among(viewer, [article.author_id for article in found])
        return [
            ArticleOut(
                **{f: getattr(a, f) for f in ("slug", "title", "description", "body")},
                created_at=a.created_at,
                updated_at=a.updated_at,
                tag_list=sorted(tag.name for tag in a.tags),
                favorited=a.id in mine,
                favorites_count=counts.get(a.id, 0),
                author=profile_of(a.author, a.author_id in following),
            )
            for a in found
        ]

    async def search(
        self,
        viewer: User | None,
        limit: int,
        offset: int,
        filters: Spec[Article],
        feed: bool = False,
    ) -> tuple[list[ArticleOut], int]:
        if feed and viewer is not None:
            followed = select(Follow.followed_id).where(Follow.follower_id == viewer.id)
            filters &= Spec.in_(Article.author_id, followed)
        newest_first = articles.where(filters).order_by(Article.created_at.desc())
        found = await articles.get_all(offset, limit, newest_first)
        return await self.views(viewer, found), await articles.count(filters)

    async def get(self, slug: str) -> Article:
        article = await articles.find_by_slug(slug)
        if article is None:
            raise EntityNotFoundError(Article, slug)
        return article

    async def _own(self, user: User, slug: str) -> Article:
        article = await self.get(slug)
        if article.author_id != user.id:
            raise PermissionError("only the author may change an article")
        return article

    @transactional
    @cache_evict(key_prefix="conduit-tags")  # new tags: the tag list is stale after the commit
    async def create(self, user: User, new: NewArticle) -> Article:
        names = [{"name": name} for name in dict.fromkeys(new.tag_list)]
        article = Article(
            slug=slugify(new.title),
            title=new.title,
            description=new.description,
            body=new.body,
            author=user,
            tags=await tags.get_or_create_all(names, key="name"),
        )
        return await articles.save(article)

    @transactional
    async def update(self, user: User, slug: str, changes: ArticleChanges) -> Article:
        article = await self._own(user, slug)
        for name, value in changes.model_dump(exclude_none=True).items():
            setattr(article, name, value)
        if changes.title:
            article.slug = slugify(changes.title)
        return await articles.save(article)

    @transactional
    async def delete(self, user: User, slug: str) -> None:
        await articles.delete_entity(await self._own(user, slug))  # favorites, comments cascade

    @transactional
    async def favorite(self, user: User, slug: str, favorite: bool) -> Article:
        article = await self.get(slug)
        if favorite:
            row = {"user_id": user.id, "article_id": article.id}
            await favorites.upsert_all([row], on_conflict="nothing")
        else:
            await favorites.delete_by_user_id_and_article_id(user.id, article.id)
        return article


class CommentService:
    def __init__(self, article_service: ArticleService) -> None:
        self.articles = article_service

    async def views(self, viewer: User | None, found: list[Comment]) -> list[CommentOut]:
        following = await followed_among(viewer, [c.author_id for c in found])
        return [
            CommentOut.model_validate(c).model_copy(
                update={"author": profile_of(c.author, c.author_id in following)}
            )
            for c in found
        ]

    async def list(self, slug: str) -> list[Comment]:
        article = await self.articles.get(slug)
        return await comments.find_all_by_article_id_order_by_id(article.id)

    @transactional
    async def add(self, user: User, slug: str, body: str) -> Comment:
        article = await self.articles.get(slug)
        return await comments.save(Comment(body=body, article_id=article.id, author=user))

    @transactional
    async def delete(self, user: User, slug: str, comment_id: int) -> None:
        article = await self.articles.get(slug)
        comment = await comments.find_by_id_and_article_id(comment_id, article.id)
        if comment is None:
            raise EntityNotFoundError(Comment, comment_id)
        if comment.author_id != user.id:
            raise PermissionError("only the author may delete a comment")
        await comments.delete_entity(comment)
