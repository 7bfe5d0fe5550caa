"""core.fsutil.replacing: the final name holds the old file or the whole new one, never a part."""

from __future__ import annotations

import pytest

from faceapp.core.fsutil import replacing


def test_replacing_swaps_in_the_new_file_only_when_the_block_ends(tmp_path):
    dest = tmp_path / "report.csv"
    dest.write_text("old")
    with replacing(dest) as tmp:
        tmp.write_text("new")
        assert dest.read_text() == "old"
    assert dest.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "report.csv"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]
