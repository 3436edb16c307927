"""The HTTP API: FastAPI routes over the services; ``DbMiddleware`` makes each request one
transaction and ``add_exception_handlers`` turns the library's errors into 404/409/422."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response

from examples.conduit import auth
from examples.conduit.entities import Article, User
from examples.conduit.schemas import (
    ArticleChanges,
    ArticleEnvelope,
    ArticlesEnvelope,
    CommentEnvelope,
    CommentsEnvelope,
    Login,
    NewArticle,
    NewComment,
    NewUser,
    ProfileEnvelope,
    TagsEnvelope,
    UserChanges,
    UserEnvelope,
    UserOut,
)
from examples.conduit.services import (
    ArticleService,
    CommentService,
    ProfileService,
    UserService,
    tags,
    users,
)
from viveka_db import DbMiddleware, DuplicateKeyError, Spec
from viveka_db.config import ConfigSource
from viveka_db.integrations.fastapi import (
    FilterParams,
    add_exception_handlers,
    filters_for,
    viveka_lifespan,
)

user_service, profile_service = UserService(), ProfileService()
article_service = ArticleService()
comment_service = CommentService(article_service)


async def optional_user(authorization: Annotated[str | None, Header()] = None) -> User | None:
    """The user of ``Authorization: Token <jwt>``; ``None`` without the header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    user_id = auth.user_id_of(token) if scheme == "Token" else None
    user = None if user_id is None else await users.get_by_id(user_id)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token")
    return user


async def required_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing Authorization: Token <jwt>")
    return user


Viewer = Annotated[User | None, Depends(optional_user)]
Me = Annotated[User, Depends(required_user)]
Limit = Annotated[int, Query(ge=1, le=100)]
# RealWorld's ?tag=, ?author=, ?favorited=: typed in OpenAPI, EXISTS in SQL (exact counts)
PUBLIC_NAMES = {
    "tags.name": "tag",
    "author.username": "author",
    "favorited_by.username": "favorited",
}
ArticleFilters = Annotated[
    FilterParams[Article],
    Depends(filters_for(Article, allow=dict.fromkeys(PUBLIC_NAMES, ("eq",)), names=PUBLIC_NAMES)),
]
Offset = Annotated[int, Query(ge=0)]


def user_envelope(user: User) -> UserEnvelope:
    token = auth.token_for(user.id)
    out = UserOut(
        email=user.email, token=token, username=user.username, bio=user.bio, image=user.image
    )
    return UserEnvelope(user=out)


def create_app(config: ConfigSource = None, *, create_tables: bool = False) -> FastAPI:
    """Conduit; ``config`` is any viveka_db config source (default: env / config.ini).

    The tables come from the migrations in ``migrations/`` (``viveka-db db upgrade``);
    ``create_tables=True`` creates them at start-up instead (tests, a quick try).
    """
    lifespan = viveka_lifespan(config, create_tables=create_tables)
    app = FastAPI(title="Conduit on viveka_db", lifespan=lifespan)
    app.add_middleware(DbMiddleware)
    add_exception_handlers(app)  # missing article/profile 404, constraint 409, bad paging 422

    @app.exception_handler(DuplicateKeyError)  # RealWorld answers a taken name/email with 422
    async def taken(request: Request, exc: DuplicateKeyError) -> JSONResponse:
        errors = {column: ["has already been taken"] for column in exc.columns}
        return JSONResponse({"errors": errors or {"body": ["already exists"]}}, 422)

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: PermissionError) -> JSONResponse:
        return JSONResponse({"errors": {"body": [str(exc)]}}, status.HTTP_403_FORBIDDEN)

    @app.post("/api/users", status_code=201)
    async def register(user: Annotated[NewUser, Body(embed=True)]) -> UserEnvelope:
        return user_envelope(await user_service.register(user))

    @app.post("/api/users/login")
    async def login(user: Annotated[Login, Body(embed=True)]) -> UserEnvelope:
        found = await user_service.login(user.email, user.password)
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong email or password")
        return user_envelope(found)

    @app.get("/api/user")
    async def current_user(me: Me) -> UserEnvelope:
        return user_envelope(me)

    @app.put("/api/user")
    async def update_user(me: Me, user: Annotated[UserChanges, Body(embed=True)]) -> UserEnvelope:
        return user_envelope(await user_service.update(me, user))

    @app.get("/api/profiles/{username}")
    async def profile(username: str, viewer: Viewer) -> ProfileEnvelope:
        return ProfileEnvelope(profile=await profile_service.get(viewer, username))

    @app.post("/api/profiles/{username}/follow")
    async def follow(username: str, me: Me) -> ProfileEnvelope:
        return ProfileEnvelope(profile=await profile_service.follow(me, username, True))

    @app.delete("/api/profiles/{username}/follow")
    async def unfollow(username: str, me: Me) -> ProfileEnvelope:
        return ProfileEnvelope(profile=await profile_service.follow(me, username, False))

    @app.get("/api/articles")
    async def list_articles(
        viewer: Viewer, filters: ArticleFilters, limit: Limit = 20, offset: Offset = 0
    ) -> ArticlesEnvelope:
        found, total = await article_service.search(viewer, limit, offset, filters)
        return ArticlesEnvelope(articles=found, articles_count=total)

    @app.get("/api/articles/feed")
    async def feed(me: Me, limit: Limit = 20, offset: Offset = 0) -> ArticlesEnvelope:
        found, total = await article_service.search(me, limit, offset, Spec.all_of(), feed=True)
        return ArticlesEnvelope(articles=found, articles_count=total)

    async def one(viewer: User | None, article: Article) -> ArticleEnvelope:
        (view,) = await article_service.views(viewer, [article])
        return ArticleEnvelope(article=view)

    @app.post("/api/articles", status_code=201)
    async def create_article(
        me: Me, article: Annotated[NewArticle, Body(embed=True)]
    ) -> ArticleEnvelope:
        return await one(me, await article_service.create(me, article))

    @app.get("/api/articles/{slug}")
    async def get_article(slug: str, viewer: Viewer) -> ArticleEnvelope:
        return await one(viewer, await article_service.get(slug))

    @app.put("/api/articles/{slug}")
    async def update_article(
        slug: str, me: Me, article: Annotated[ArticleChanges, Body(embed=True)]
    ) -> ArticleEnvelope:
        return await one(me, await article_service.update(me, slug, article))

    @app.delete("/api/articles/{slug}", status_code=204, response_class=Response)
    async def delete_article(slug: str, me: Me) -> Response:
        await article_service.delete(me, slug)
        return Response(status_code=204)

    @app.post("/api/articles/{slug}/favorite")
    async def favorite(slug: str, me: Me) -> ArticleEnvelope:
        return await one(me, await article_service.favorite(me, slug, True))

    @app.delete("/api/articles/{slug}/favorite")
    async def unfavorite(slug: str, me: Me) -> ArticleEnvelope:
        return await one(me, await article_service.favorite(me, slug, False))

    @app.get("/api/articles/{slug}/comments")
    async def list_comments(slug: str, viewer: Viewer) -> CommentsEnvelope:
        found = await comment_service.list(slug)
        return CommentsEnvelope(comments=await comment_service.views(viewer, found))

    @app.post("/api/articles/{slug}/comments")
    async def add_comment(
        slug: str, me: Me, comment: Annotated[NewComment, Body(embed=True)]
    ) -> CommentEnvelope:
        added = await comment_service.add(me, slug, comment.body)
        (view,) = await comment_service.views(me, [added])
        return CommentEnvelope(comment=view)

    @app.delete("/api/articles/{slug}/comments/{comment_id}")
    async def delete_comment(slug: str, comment_id: int, me: Me) -> dict[str, object]:
        await comment_service.delete(me, slug, comment_id)
        return {}

    @app.get("/api/tags")
    async def list_tags() -> TagsEnvelope:
        return TagsEnvelope(tags=await tags.names())  # cached; a new article evicts it

    return app


app = create_app()
