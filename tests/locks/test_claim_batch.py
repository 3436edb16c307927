"""``claim_batch``: concurrent workers of a work queue never get the same row."""

from __future__ import annotations

import asyncio

import pytest

from tests.locks.models import Job, JobRepo
from viveka_db import DatabaseSessionFactory, PaginationError, Spec, transactional

jobs = JobRepo()
PENDING = Job.status == "pending"


async def test_four_workers_claim_forty_rows_disjoint_and_complete(
    db: DatabaseSessionFactory,
) -> None:
    created = await jobs.insert_all([Job() for _ in range(40)])
    claimed: dict[str, list[int]] = {}

    @transactional
    async def claim_once(worker: str) -> int:
        batch = await jobs.claim_batch(3, jobs.where(PENDING))
        for job in batch:
            job.status, job.worker = "done", worker
        await asyncio.sleep(0.01)  # hold the claim while the other workers claim
        claimed.setdefault(worker, []).extend(job.id for job in batch)
        return len(batch)

    async def worker(name: str) -> None:
        while await claim_once(name):
            pass

    await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
    everything = [job_id for ids in claimed.values() for job_id in ids]
    assert len(everything) == len(set(everything)) == 40  # disjoint
    assert sorted(everything) == sorted(job.id for job in created)  # complete
    stored = await jobs.all()
    assert {job.id: job.worker for job in stored} == {
        job_id: worker for worker, ids in claimed.items() for job_id in ids
    }


async def test_claims_held_at_the_same_time_are_disjoint(
    db: DatabaseSessionFactory, backend: str
) -> None:
    """Four open transactions claim ten each before any commits: SKIP LOCKED at work."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer: a second claim waits for the first commit")
    created = await jobs.insert_all([Job() for _ in range(40)])
    all_claimed = asyncio.Barrier(4)

    @transactional
    async def claim(worker: str) -> list[int]:
        batch = await jobs.claim_batch(10)
        await all_claimed.wait()  # nobody commits before every worker has its batch
        for job in batch:
            job.worker = worker
        return [job.id for job in batch]

    # (without SKIP LOCKED the second worker would wait for the first, which waits for it)
    batches = await asyncio.wait_for(asyncio.gather(*(claim(f"w{i}") for i in range(4))), 30)
    assert all(len(batch) == 10 for batch in batches)
    flat = [job_id for batch in batches for job_id in batch]
    assert sorted(flat) == sorted(job.id for job in created)


async def test_claim_batch_follows_the_query_and_its_order(db: DatabaseSessionFactory) -> None:
    created = await jobs.insert_all([Job(balance=i % 3) for i in range(6)])

    @transactional
    async def claim() -> list[int]:
        query = jobs.where(Job.balance > 0).order_by(Job.balance.desc())
        return [job.id for job in await jobs.claim_batch(3, query)]

    by_balance = sorted(
        (job for job in created if job.balance > 0), key=lambda j: (-j.balance, j.id)
    )
    assert await claim() == [job.id for job in by_balance[:3]]


async def test_claim_batch_checks_its_size(db: DatabaseSessionFactory) -> None:
    @transactional
    async def claim(size: object) -> None:
        await jobs.claim_batch(size)  # type: ignore[arg-type]

    for size in (0, -1, "5", 10**9):
        with pytest.raises(PaginationError, match="size"):
            await claim(size)


async def test_claim_batch_takes_a_spec_too(db: DatabaseSessionFactory) -> None:
    created = await jobs.insert_all([Job(balance=i % 3) for i in range(6)])

    @transactional
    async def claim() -> list[int]:
        return [job.id for job in await jobs.claim_batch(10, Spec.gt(Job.balance, 1))]

    assert await claim() == sorted(job.id for job in created if job.balance > 1)
