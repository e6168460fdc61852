"""core.db.STORAGE_EXCEPTIONS: what the CLI's last-resort handler reports as a storage failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ragcli.core.db import STORAGE_EXCEPTIONS
from ragcli.core.errors import RagcliError


def test_sqlite_and_os_errors_are_storage_failures(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db")
    with pytest.raises(sqlite3.Error) as sqlite_failure:
        conn.execute("SELECT * FROM missing_table")
    with pytest.raises(OSError) as os_failure:
        (tmp_path / "absent").read_text()
    assert isinstance(sqlite_failure.value, STORAGE_EXCEPTIONS)
    assert isinstance(os_failure.value, STORAGE_EXCEPTIONS)


def test_other_errors_are_not() -> None:
    for exc in (RagcliError("x"), ValueError("x"), KeyError("x")):
        assert not isinstance(exc, STORAGE_EXCEPTIONS)
