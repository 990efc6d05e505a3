"""The fixture store: provenance, hashes, and clear errors for missing, truncated or altered files."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parity.runner import collect, run_checks
from parity.store import FixtureError, FixtureStore, decode_spec, encode_spec

PROV = {"big_vision_commit": "abc123", "versions": {"tensorflow": "x"}}


@pytest.fixture
def tiny(tmp_path) -> FixtureStore:
    s = FixtureStore(tmp_path / "fx")
    s.write_family("fam", {"a": {"x": np.arange(10, dtype=np.uint8), "spec": encode_spec({"k": 1})},
                           "b": {"y": np.ones((3, 3), np.float32)}},
                   provenance=PROV, generator_args={"a": {"k": 1}})
    return s


def test_write_then_load_round_trip(tiny):
    data = tiny.load("fam/a.npz")
    np.testing.assert_array_equal(data["x"], np.arange(10, dtype=np.uint8))
    assert decode_spec(data["spec"]) == {"k": 1}
    entry = tiny.entries()["fam/a.npz"]
    assert entry["big_vision_commit"] == "abc123" and entry["generator"]["args"] == {"k": 1}
    assert len(entry["sha256"]) == 64 and entry["date"]
    assert tiny.verify() == []


def test_npz_bytes_are_deterministic(tmp_path):
    for d in ("one", "two"):
        FixtureStore(tmp_path / d).write_family("f", {"a": {"x": np.arange(5)}}, provenance=PROV, generator_args={})
    assert (tmp_path / "one/f/a.npz").read_bytes() == (tmp_path / "two/f/a.npz").read_bytes()


def test_missing_file_names_file_and_command(tiny):
    (tiny.root / "fam/a.npz").unlink()
    with pytest.raises(FixtureError, match=r"fam/a\.npz: fixture file is missing.*parity fixtures generate --family fam"):
        tiny.load("fam/a.npz")


def test_truncated_file(tiny):
    p = tiny.root / "fam/a.npz"
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(FixtureError, match=r"fam/a\.npz: fixture file has 50 bytes.*truncated"):
        tiny.load("fam/a.npz")


def test_altered_file_same_size(tiny):
    p = tiny.root / "fam/a.npz"
    raw = bytearray(p.read_bytes())
    raw[-30] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(FixtureError, match=r"sha256 .* does not match .*altered.*parity fixtures generate"):
        tiny.load("fam/a.npz")


def test_corrupt_manifest_and_missing_manifest(tiny):
    tiny.manifest_path.write_text("{not json")
    with pytest.raises(FixtureError, match="manifest is not valid JSON"):
        tiny.load("fam/a.npz")
    tiny.manifest_path.unlink()
    with pytest.raises(FixtureError, match="manifest not found"):
        tiny.manifest()


def test_stray_and_unlisted_files_are_reported(tiny):
    shutil.copy(tiny.root / "fam/a.npz", tiny.root / "fam/c.npz")
    problems = tiny.verify()
    assert len(problems) == 1 and "c.npz: not in the manifest" in problems[0]
    with pytest.raises(FixtureError, match="no manifest entry"):
        tiny.load("fam/c.npz")


def test_regenerating_a_family_replaces_its_files(tiny):
    tiny.write_family("fam", {"z": {"x": np.zeros(2)}}, provenance=PROV, generator_args={})
    assert tiny.files("fam") == ["fam/z.npz"]
    assert not (tiny.root / "fam/a.npz").exists()


def test_a_broken_family_is_one_failing_check_not_a_crash(tmp_path):
    shutil.copytree(FixtureStore().root, tmp_path / "fx")
    store = FixtureStore(tmp_path / "fx")
    victim = store.files("preprocess")[0]
    (store.root / victim).write_bytes(b"garbage")
    results = run_checks(collect(store, ["preprocess"]), progress=False)
    bad = [r for r in results if not r.ok]
    assert bad and all("parity fixtures generate --family preprocess" in r.detail for r in bad)


def _parity(*args, env=None):
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env)


def test_cli_verify_and_check_exit_codes(tmp_path):
    shutil.copytree(FixtureStore().root, tmp_path / "fx")
    ok = _parity("fixtures", "verify", "--fixtures", str(tmp_path / "fx"))
    assert ok.returncode == 0, ok.stderr
    good = _parity("check", "--family", "preprocess", "--fixtures", str(tmp_path / "fx"),
                   "--report", str(tmp_path / "rep"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "REJECTED" in good.stdout and "PASS" in good.stdout
    res = json.loads((tmp_path / "rep/results.json").read_text())
    assert res["results"] and all(r["ok"] for r in res["results"])
    assert (tmp_path / "rep/report.html").exists() and (tmp_path / "rep/report.md").exists()
    victim = FixtureStore(tmp_path / "fx").files("preprocess")[0]
    (tmp_path / "fx" / victim).unlink()
    bad = _parity("fixtures", "verify", "--fixtures", str(tmp_path / "fx"))
    assert bad.returncode == 1 and "fixture file is missing" in bad.stderr
    failing = _parity("check", "--family", "preprocess", "--fixtures", str(tmp_path / "fx"))
    assert failing.returncode == 1 and "fixture file is missing" in failing.stderr
    assert "Traceback" not in failing.stderr


def test_cli_rejects_unknown_family():
    out = _parity("check", "--family", "no_such_family")
    assert out.returncode != 0 and "unknown family no_such_family" in out.stderr
