"""The HTTP API: FastAPI + ``DbMiddleware`` (one transaction per request) + the lifespan helper."""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, status

from examples.shop.entities import OrderStatus
from examples.shop.repositories import OrderRepo, UserRepo
from examples.shop.schemas import OrderCreate, OrderRead, UserCreate, UserRead, UserRename
from examples.shop.services import EmailTakenError, OrderService, UnknownUserError, UserService
from viveka_db import DbMiddleware
from viveka_db.config import ConfigSource
from viveka_db.integrations.fastapi import viveka_lifespan


def create_app(config: ConfigSource = None) -> FastAPI:
    """The shop; ``config`` is any viveka_db config source (default: env / config.ini)."""
    app = FastAPI(title="viveka_db shop", lifespan=viveka_lifespan(config, create_tables=True))
    app.add_middleware(DbMiddleware)

    users, orders = UserRepo(), OrderRepo()
    user_service = UserService(users)
    order_service = OrderService(users, orders)

    @app.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserRead)
    async def register(body: UserCreate) -> Any:
        try:
            return await user_service.register(body.name, body.email)
        except EmailTakenError:
            raise HTTPException(status.HTTP_409_CONFLICT, "email already registered") from None

    @app.get("/users/{user_id}", response_model=UserRead)
    async def read_user(user_id: int) -> Any:
        user = await users.get(user_id)
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
        return user

    @app.patch("/users/{user_id}", response_model=UserRead)
    async def rename_user(user_id: int, body: UserRename) -> Any:
        user = await users.rename(user_id, body.name)
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
        return user

    @app.post(
        "/users/{user_id}/orders", status_code=status.HTTP_201_CREATED, response_model=OrderRead
    )
    async def place_order(user_id: int, body: OrderCreate, background: BackgroundTasks) -> Any:
        try:
            order = await order_service.place(user_id, body.item, body.quantity)
        except UnknownUserError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user") from None
        background.add_task(order_service.confirm, order.id)
        return order

    @app.get("/users/{user_id}/orders", response_model=list[OrderRead])
    async def list_orders(user_id: int) -> Any:
        return await orders.find_all_by_user_id_order_by_id(user_id)

    @app.get("/orders/stats")
    async def order_stats() -> dict[str, int]:
        return {s.value: await orders.count_by_status(s) for s in OrderStatus}

    return app


app = create_app()
