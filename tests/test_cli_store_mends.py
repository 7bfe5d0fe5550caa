"""CLI and store details without models: `models use` hints, `models verify` selection,
add_templates' count, audit actors and the --home rule."""

from __future__ import annotations

import os

from pathlib import Path

import numpy as np
import pytest

from faceapp.cli import main
from faceapp.cli.common import cli_actor, home_paths
from faceapp.core.errors import NotFoundError
from faceapp.engine.catalog import get_pack
from faceapp.service.app import App
from faceapp.store.attendance import AttendanceStore
from faceapp.store.audit import default_actor
from faceapp.store.db import NewPhoto, Store

HINT = "enrolled people need templates for this model"


def _photo(dim: int) -> NewPhoto:
    crop = np.full((112, 112, 3), 128, np.uint8)
    return NewPhoto(crop=crop, embedding=np.full(dim, dim ** -0.5, np.float32))


def test_models_use_hints_at_recompute_only_when_templates_are_missing(tmp_path, capsys):
    with App(tmp_path) as app:
        app.store.add_person("Ann", app.model_id, [_photo(512)])
    assert main(["--home", str(tmp_path), "models", "use", "opencv"]) == 0
    assert HINT in capsys.readouterr().out
    with Store(tmp_path / "faceapp.db") as s:
        s.add_templates("sface", [(p.id, np.full(128, 128 ** -0.5, np.float32)) for p in s.photos()])
    assert main(["--home", str(tmp_path), "models", "use", "buffalo_sc"]) == 0
    assert main(["--home", str(tmp_path), "models", "use", "opencv"]) == 0
    assert HINT not in capsys.readouterr().out


def test_models_verify_checks_only_packs_with_every_file(tmp_path, capsys):
    pack = get_pack("opencv")
    folder = tmp_path / "models" / pack.name
    folder.mkdir(parents=True)
    (folder / pack.detector.name).write_bytes(b"x")  # one file of two: not installed
    assert main(["--home", str(tmp_path), "models", "verify"]) == 1
    assert "no model pack is installed" in capsys.readouterr().out
    (folder / pack.recognizer.name).write_bytes(b"y")  # both present, both wrong: damaged
    assert main(["--home", str(tmp_path), "models", "verify"]) == 1
    out, err = capsys.readouterr()
    assert out.count("opencv/") == 2 and "mismatch" in out and "buffalo" not in out
    assert "faceapp models install --pack opencv" in err


def test_add_templates_returns_how_many_were_stored(tmp_path):
    with Store(tmp_path / "db.sqlite") as s:
        pid = s.add_person("Ann", "w600k_mbf", [_photo(512), _photo(512)])
        first, second = (p.id for p in s.photos(pid))
        s.remove_photo(second)
        items = [(first, np.full(128, 128 ** -0.5, np.float32)), (second, np.full(128, 128 ** -0.5, np.float32))]
        assert s.add_templates("sface", items) == 1
        assert s.template_count("sface") == 1


def test_assign_refuses_an_unknown_person(tmp_path):
    with Store(tmp_path / "db.sqlite") as s:
        att = AttendanceStore(s)
        att.add_group("staff")
        with pytest.raises(NotFoundError, match="no person with id 99"):
            att.assign(99, "staff")


def test_actor_names(monkeypatch):
    import pwd

    assert default_actor().startswith("local:") and cli_actor().startswith("cli:")
    assert cli_actor().split(":", 1)[1] == default_actor().split(":", 1)[1]
    me = pwd.getpwuid(os.getuid()).pw_name
    # Never from the environment: the account that runs the process is the actor (#11).
    for name, value in (("FACEAPP_ACTOR", "gui:admin"), ("USER", "mallory"), ("LOGNAME", "mallory")):
        monkeypatch.setenv(name, value)
    assert cli_actor() == f"cli:{me}" and default_actor() == f"local:{me}"


def test_home_paths_follow_the_app(tmp_path, monkeypatch):
    class Args:
        home = None

    monkeypatch.setenv("FACEAPP_HOME", str(tmp_path / "env-home"))
    assert home_paths(Args()).home == Path(tmp_path / "env-home")
    Args.home = str(tmp_path / "given")
    with App(Args.home) as app:
        assert home_paths(Args()) == app.paths
