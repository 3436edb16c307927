"""The eviction journal: what is added comes back after a restart until it is removed."""

from __future__ import annotations

from pathlib import Path

from viveka_db.cache.eviction_journal import EvictionJournal


def test_entries_survive_until_removed_and_others_stay(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.jsonl"
    journal = EvictionJournal(path)
    assert journal.load() == []
    journal.add("user", None)
    journal.add("user", "42")
    EvictionJournal(path).add("order", None)  # another process, same file
    assert EvictionJournal(path).load() == [("user", None), ("user", "42"), ("order", None)]
    journal.remove([("user", None), ("user", "42")])
    assert journal.load() == [("order", None)]


def test_unreadable_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('not json\n{"prefix": "a", "key": null}\n{"prefix": 3, "key": null}\n')
    assert EvictionJournal(path).load() == [("a", None)]
