"""Services: business operations, each one transaction (``@transactional``)."""

from __future__ import annotations

import logging

from examples.shop.entities import Order, OrderStatus, User
from examples.shop.repositories import OrderRepo, UserRepo
from viveka_db import transactional

logger = logging.getLogger("examples.shop")


class EmailTakenError(Exception):
    """A user with that email exists already."""


class UnknownUserError(Exception):
    """No user has that id."""


class UserService:
    def __init__(self, users: UserRepo) -> None:
        self.users = users

    @transactional
    async def register(self, name: str, email: str) -> User:
        if await self.users.find_by_email(email) is not None:
            raise EmailTakenError(email)
        return await self.users.save(User(name=name, email=email))


class OrderService:
    def __init__(self, users: UserRepo, orders: OrderRepo) -> None:
        self.users = users
        self.orders = orders

    @transactional
    async def place(self, user_id: int, item: str, quantity: int) -> Order:
        """Insert the order; both reads and the insert share one transaction."""
        if not await self.users.exists(user_id):
            raise UnknownUserError(user_id)
        return await self.orders.save(Order(user_id=user_id, item=item, quantity=quantity))

    @transactional
    async def confirm(self, order_id: int) -> None:
        """Run as a background task, after the response: it gets a session of its own."""
        order = await self.orders.get_by_id(order_id)
        if order is not None:
            order.status = OrderStatus.CONFIRMED
            logger.info("order %s confirmed", order_id)
