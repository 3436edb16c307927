"""Generated rows for the specification, filter and path-sorting tests (seeded, repeatable).

Ties and ``NULL`` s on purpose: writer names repeat and some are ``NULL``, a third of the
posts have no editor, posts have zero to three notes and zero to three labels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import insert

from tests.repository.query_models import Label, Note, Post, Status, Writer, post_labels
from viveka_db import DbRepo, current_session, transactional

TITLES = ("Async ORMs", "async tips", "SQL", "sql joins", "Python_3", "100% sure")
NAMES = ("ada", "bob", "cy", None)
LABELS = ("db", "py", "web", "ops")


@dataclass
class Data:
    writers: list[Writer]
    posts: list[Post]


@transactional
async def make_data(seed: int = 3, writers: int = 12, posts: int = 60) -> Data:
    rng = random.Random(seed)
    made_writers = await DbRepo(Writer).insert_all(
        [
            Writer(
                email=f"w{i}@example.com",
                name=rng.choice(NAMES),
                password_hash=f"secret-{i}",
                age=rng.choice((None, 20, 30, 40)),
                joined=datetime(2024, 1, 1 + i, 12, tzinfo=UTC),
            )
            for i in range(writers)
        ]
    )
    labels = await DbRepo(Label).insert_all([Label(name=name) for name in LABELS])
    writer_ids = [w.id for w in made_writers]
    made_posts = await DbRepo(Post).insert_all(
        [
            Post(
                title=rng.choice(TITLES),
                views=rng.randint(0, 9),
                price=Decimal(rng.randint(0, 999)) / 100,
                day=date(2024, 1, rng.randint(1, 28)),
                published=rng.random() < 0.5,
                status=rng.choice(list(Status)),
                subtitle=rng.choice((None, "x", "y")),
                writer_id=rng.choice(writer_ids),
                editor_id=rng.choice((None, *writer_ids)),
            )
            for _ in range(posts)
        ]
    )
    notes = [
        Note(post_id=post.id, stars=rng.randint(1, 5), body=f"note {i}")
        for post in made_posts
        for i in range(rng.randint(0, 3))
    ]
    await DbRepo(Note).insert_all(notes)
    links = [
        {"post_id": post.id, "label_id": label.id}
        for post in made_posts
        for label in rng.sample(labels, rng.randint(0, 3))
    ]
    if links:
        await current_session().execute(insert(post_labels), links)
    return Data(made_writers, made_posts)
