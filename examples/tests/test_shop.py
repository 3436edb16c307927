"""The shop over HTTP: transactions per request, caching, background tasks."""

from __future__ import annotations

import httpx

from viveka_db import MemoryCache


async def _register(client: httpx.AsyncClient, name: str, email: str) -> dict[str, object]:
    response = await client.post("/users", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_register_and_read_a_user(shop_client: httpx.AsyncClient) -> None:
    ada = await _register(shop_client, "Ada", "ada@example.com")
    assert ada["id"] == 1 and ada["created_at"]
    response = await shop_client.get("/users/1")
    assert response.json() == ada
    assert (await shop_client.get("/users/2")).status_code == 404


async def test_duplicate_email_is_refused(shop_client: httpx.AsyncClient) -> None:
    await _register(shop_client, "Ada", "ada@example.com")
    response = await shop_client.post("/users", json={"name": "Eve", "email": "ada@example.com"})
    assert response.status_code == 409
    assert (await shop_client.get("/users/2")).status_code == 404


async def test_reads_are_cached_and_renames_evict(
    shop_client: httpx.AsyncClient, shop_cache: MemoryCache
) -> None:
    await _register(shop_client, "Grace", "grace@example.com")
    assert (await shop_client.get("/users/1")).json()["name"] == "Grace"
    assert (await shop_client.get("/users/1")).json()["name"] == "Grace"
    assert (shop_cache.stats().misses, shop_cache.stats().hits) == (1, 1)

    renamed = await shop_client.patch("/users/1", json={"name": "Grace Hopper"})
    assert renamed.json()["name"] == "Grace Hopper"
    assert shop_cache.stats().evictions == 1  # after the request's commit
    assert (await shop_client.get("/users/1")).json()["name"] == "Grace Hopper"


async def test_orders_are_confirmed_by_a_background_task(shop_client: httpx.AsyncClient) -> None:
    await _register(shop_client, "Linus", "linus@example.com")
    placed = await shop_client.post("/users/1/orders", json={"item": "keyboard", "quantity": 2})
    assert placed.status_code == 201
    assert placed.json()["status"] == "placed"  # the response was built before the task ran
    orders = (await shop_client.get("/users/1/orders")).json()
    assert [(o["item"], o["quantity"], o["status"]) for o in orders] == [
        ("keyboard", 2, "confirmed")
    ]
    assert (await shop_client.get("/orders/stats")).json() == {"placed": 0, "confirmed": 1}


async def test_an_order_for_an_unknown_user_is_rejected(shop_client: httpx.AsyncClient) -> None:
    response = await shop_client.post("/users/42/orders", json={"item": "mouse"})
    assert response.status_code == 404
    assert (await shop_client.get("/users/42/orders")).json() == []
