"""`faceapp evaluate` and `faceapp bench` on real photos and the real Hamilton clip (small runs).

No timing asserts: only that the numbers exist, are consistent and that the answers are right.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from faceapp.cli import main
from faceapp.core.errors import FaceAppError
from faceapp.core.settings import DEFAULT_THRESHOLDS
from faceapp.service.evaluate import (
    EvalConfig, Evaluator, collect_identities, format_report, format_table_row, normalise_name, split_identities)

REQUIRED_KEYS = {"n_identities", "n_probes", "failures_to_detect", "rank1", "fnir_at_fpir_1pct",
                 "threshold_at_fpir_1pct", "fnir_at_fpir_5pct", "eer", "default_threshold", "fnir_at_default",
                 "fpir_at_default"}


@pytest.fixture(scope="module")
def lfw_eval(faces_dir, models_dir, engine):
    """lfw_krasserm embedded once with the session's engine."""
    ev = Evaluator([faces_dir / "lfw_krasserm"], models_dir, engines=[engine])
    ev.faces("buffalo_sc")
    return ev


def test_identities_merge_by_normalised_name(tmp_path, faces_dir):
    src = faces_dir / "face_recognition_examples" / "Barack_Obama"
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "Barack_Obama").mkdir(parents=True)
    (b / "barack-obama").mkdir(parents=True)
    (b / "Joe Biden").mkdir()
    photos = sorted(src.iterdir())
    for p in photos[:2]:
        (a / "Barack_Obama" / p.name).symlink_to(p)
    for p in photos[2:5]:
        (b / "barack-obama" / p.name).symlink_to(p)
    (b / "Joe Biden" / "x.jpg").symlink_to(photos[0])
    ids = collect_identities([a, b])
    assert [i.key for i in ids] == ["barackobama", "joebiden"]
    obama = ids[0]
    assert obama.name == "Barack Obama" and len(obama.photos) == 5
    assert obama.photos[:2] == tuple(a / "Barack_Obama" / p.name for p in photos[:2])  # folder order first
    assert normalise_name("Zoë_Saldaña") == normalise_name("zoe saldana")


def test_collect_rejects_bad_folders(tmp_path, faces_dir):
    with pytest.raises(FaceAppError, match="not a folder"):
        collect_identities([tmp_path / "missing"])
    with pytest.raises(FaceAppError, match="no sub-folders"):
        collect_identities([faces_dir / "group_photos"])
    with pytest.raises(FaceAppError):
        collect_identities([])


def test_split_is_deterministic_and_complementary(faces_dir):
    dirs = [faces_dir / d for d in ("lfw_krasserm", "face_recognition_examples", "openface_examples")]
    ids = collect_identities(dirs)
    k0, u0 = split_identities(ids, 3, fold=0)
    k1, u1 = split_identities(ids, 3, fold=1)
    again, _ = split_identities(list(reversed(ids)), 3, fold=0)
    assert {i.key for i in again} == {i.key for i in k0}
    eligible = {i.key for i in ids if len(i.photos) > 3}
    assert {i.key for i in k0} | {i.key for i in k1} == eligible
    assert not {i.key for i in k0} & {i.key for i in k1}
    assert abs(len(k0) - len(k1)) <= 1
    # Too few photos to enroll 3 and probe one: always a stranger.
    assert "linmanuelmiranda" in {i.key for i in u0} and "linmanuelmiranda" in {i.key for i in u1}


def test_lfw_accuracy_with_three_enrolled_photos(lfw_eval):
    r = lfw_eval.evaluate("buffalo_sc", EvalConfig(enroll=3), DEFAULT_THRESHOLDS["w600k_mbf"])
    d = r.to_dict()
    assert REQUIRED_KEYS <= d.keys()
    assert d["n_identities"] == 10 and d["n_photos"] == 100 and d["failures_to_detect"] == 0
    # Two folds: every person is known once (3 enrolled, 7 probes) and a stranger once (10 probes).
    assert d["n_mated"] == 70 and d["n_nonmated"] == 100 and d["n_probes"] == 170
    assert d["n_templates"] == 30
    assert d["rank1"] >= 0.99
    assert d["fnir_at_fpir_1pct"] <= 0.02
    assert 0.5 < d["threshold_at_fpir_1pct"] < 1.0
    assert d["fpir_at_default"] <= 0.01 and d["fnir_at_default"] <= 0.05
    assert d["misidentified_at_default"] == 0.0
    assert d["genuine_max"] < d["impostor_min"]   # LFW's ten: the classes do not overlap
    json.dumps(d)  # plain JSON: no nan, no numpy types
    text = format_report(r)
    assert "rank-1" in text and "FNIR at FPIR 1%" in text and "stranger searches" in text
    assert format_table_row(r).startswith("| buffalo_sc | min |")


def test_aggregations_reuse_the_embeddings(lfw_eval):
    cached = lfw_eval.faces("buffalo_sc")
    results = {a: lfw_eval.evaluate("buffalo_sc", EvalConfig(aggregate=a, folds=1), 0.73)
               for a in ("min", "mean", "centroid")}
    assert lfw_eval.faces("buffalo_sc") is cached
    for agg, r in results.items():
        assert r.aggregate == agg and r.folds == 1
        assert r.rank1 >= 0.95
    assert len({r.scores.n_mated for r in results.values()}) == 1


def test_enrolling_more_photos_leaves_fewer_probes(lfw_eval):
    r3 = lfw_eval.evaluate("buffalo_sc", EvalConfig(enroll=3, folds=1), 0.73)
    r5 = lfw_eval.evaluate("buffalo_sc", EvalConfig(enroll=5, folds=1), 0.73)
    assert r5.n_templates == 25 and r3.n_templates == 15
    assert r5.scores.n_mated == 25 and r3.scores.n_mated == 35
    with pytest.raises(FaceAppError):
        lfw_eval.evaluate("buffalo_sc", EvalConfig(enroll=0), 0.73)


def test_cli_evaluate_json_and_plot_without_touching_the_data_folder(tmp_path, faces_dir, models_dir, capsys):
    pytest.importorskip("matplotlib")
    home = tmp_path / "home-not-created"
    png = tmp_path / "eval.png"
    # Four of the LFW people (40 photos) keep this end-to-end run short.
    lfw = tmp_path / "lfw4"
    lfw.mkdir()
    for person in ("Ariel_Sharon", "Colin_Powell", "Hugo_Chavez", "Vladimir_Putin"):
        (lfw / person).symlink_to(faces_dir / "lfw_krasserm" / person, target_is_directory=True)
    rc = main(["--home", str(home), "evaluate", str(lfw), "--enroll", "3", "--json",
               "--models", str(models_dir), "--plot", str(png), "--aggregate", "min,centroid"])
    assert rc == 0
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1
    d = json.loads(lines[0])
    assert REQUIRED_KEYS <= d.keys()
    assert d["n_identities"] == 4 and d["rank1"] >= 0.99 and d["aggregate"] == "min"
    assert [c["aggregate"] for c in d["comparison"]] == ["min", "centroid"]
    assert d["default_threshold"] == DEFAULT_THRESHOLDS["w600k_mbf"]
    assert "40/40" in err     # progress went to stderr
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not home.exists()


def test_cli_evaluate_errors_are_one_line(tmp_path, faces_dir, models_dir, capsys, monkeypatch):
    args = ["--home", str(tmp_path / "h"), "evaluate", str(faces_dir / "lfw_krasserm"), "--models", str(models_dir)]
    assert main(args + ["--aggregate", "median"]) == 1
    assert "unknown aggregation median" in capsys.readouterr().err
    assert main(args + ["--model", "buffalo_l"]) == 1
    err = capsys.readouterr().err
    assert "not installed" in err and "faceapp models install" in err
    assert main(args + ["--plot", "x.pdf"]) == 1
    assert ".png" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_get_it(lfw_eval, tmp_path, monkeypatch):
    from faceapp.service.evaluate import save_plot

    r = lfw_eval.evaluate("buffalo_sc", EvalConfig(folds=1), 0.73)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(FaceAppError, match=r"faceapp\[plot\]"):
        save_plot(r, tmp_path / "x.png")


@pytest.mark.slow
def test_bench_on_a_few_real_frames(models_dir, faces_dir):
    from faceapp.cli.evaluate import format_bench
    from faceapp.service.bench import run_bench

    r = run_bench(models_dir, faces_dir, max_frames=40, match_sizes=(1000, 2000),
                  gallery_dirs=("face_recognition_examples",), photos_per_person=2)
    d = r.to_dict()
    for key in ("frames", "baseline_ms_p50", "faceapp_ms_p50", "speedup", "video_speedup", "label_agreement",
                "match_ms_1k", "peak_rss_mb"):
        assert d[key] is not None, key
    assert d["frames"] == 40 + 40 + 16   # 40 Hamilton frames, 40 of the 1080p video, the 16 group photos
    assert [s["name"] for s in d["sources"]][-1] == "group_photos"
    assert d["gallery_people"] == 6
    # What the README claims, on these frames: faceapp agrees with plain insightface on nearly
    # every face, and on video it embeds only a fraction of the faces it shows.
    assert d["label_agreement"] >= 0.95 and d["label_agreement_known"] >= 0.95
    hamilton = d["sources"][0]
    assert hamilton["baseline_faces"] >= 40 and hamilton["label_agreement"] >= 0.95
    embedded = hamilton["embedded_per_frame"] * hamilton["frames"]
    assert embedded <= hamilton["faceapp_faces"] / 3
    assert d["peak_rss_mb"] >= d["peak_rss_mb_pipeline"] > 50
    assert [m["n"] for m in d["match"]] == [1000, 2000]
    assert math.isfinite(d["speedup"])
    json.dumps(d)
    assert "one query vs" in format_bench(d)


def test_bench_says_what_to_install(tmp_path, faces_dir, capsys):
    rc = main(["--home", str(tmp_path / "h"), "bench", "--models", str(tmp_path / "empty"), "--data", str(faces_dir)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "buffalo_sc" in err and "faceapp models install" in err
    assert main(["bench", "--data", str(tmp_path / "nothing")]) == 1
    assert "--data" in capsys.readouterr().err


def test_synthetic_gallery_matches_the_baselines():
    from faceapp.service.bench import _l2_scan, _python_loop, synthetic_gallery

    g = synthetic_gallery(500, dim=32, per_person=5)
    assert g.n_people == 100 and g.size == 500
    np.testing.assert_allclose(np.linalg.norm(g.embeddings, axis=1), 1.0, atol=1e-5)
    q = g.embeddings[42]
    best = int(np.argmin(g.person_distances(q[None])[0]))
    assert _l2_scan(g, q) == best == _python_loop(g, q) == 42 // 5


def test_models_dir_default_is_the_home_models(tmp_path):
    from faceapp.cli.evaluate import _models_dir

    class A:
        home = str(tmp_path)
        models = None

    assert _models_dir(A()) == Path(tmp_path) / "models"
