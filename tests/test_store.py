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


def _declared_ids(store, family):
    d = store.declared(family)
    return sorted(d["checks"] + d["controls"] + d["internal"])


def _copy(tmp_path) -> FixtureStore:
    shutil.copytree(FixtureStore().root, tmp_path / "fx")
    return FixtureStore(tmp_path / "fx")


def test_a_damaged_file_fails_its_checks_and_keeps_the_total(tmp_path):
    """A damaged fixture does not collapse its family into one row: the family still counts every declared
    check, the damaged file's checks fail (could not run) and name the file and the fix."""
    store = _copy(tmp_path)
    declared = _declared_ids(store, "preprocess")
    victim = store.files("preprocess")[0]
    (store.root / victim).write_bytes(b"garbage")
    checks = collect(store, ["preprocess"])
    assert set(declared) <= {c.case for c in checks}
    not_run = [c for c in checks if c.metric == "could not run"]
    assert 0 < len(not_run) < len(declared)
    results = run_checks(not_run, progress=False)
    assert all(not r.ok and r.verdict == "ERROR" for r in results)
    assert all(victim in r.detail and "parity fixtures generate --family preprocess" in r.detail for r in results)


def test_removed_manifest_entries_fail_instead_of_shrinking(tmp_path):
    store = _copy(tmp_path)
    declared = _declared_ids(store, "fast_paths")
    data = json.loads(store.manifest_path.read_text())
    gone = [p for p in data["files"] if p.startswith("fast_paths/")][:1]
    for p in gone:
        del data["files"][p]
        (store.root / p).unlink()
    store.manifest_path.write_text(json.dumps(data))
    checks = collect(store, ["fast_paths"])
    assert set(declared) <= {c.case for c in checks}             # the full total, not 51 -> 33
    not_run = run_checks([c for c in checks if c.metric == "could not run"], progress=False)
    assert not_run and all(not r.ok and gone[0] in r.detail for r in not_run)
    assert any("declared by family fast_paths but has no manifest entry" in p for p in store.verify())


def test_an_undeclared_or_empty_family_fails(tmp_path):
    store = _copy(tmp_path)
    data = json.loads(store.manifest_path.read_text())
    del data["declared"]["vit_init"]
    data["declared"]["optimizer"].update(checks=[], controls=[], internal=[])
    store.manifest_path.write_text(json.dumps(data))
    for fam, text in (("vit_init", "has no declared checks"), ("optimizer", "declares no checks")):
        rows = [r for r in run_checks([c for c in collect(store, [fam]) if c.metric == "could not run"],
                                      progress=False)]
        assert len(rows) == 1 and not rows[0].ok and text in rows[0].detail


def test_a_declared_check_the_code_does_not_build_fails(tmp_path):
    """A skipped case (an optional dependency missing, a `continue` in a family) is a failing row."""
    store = _copy(tmp_path)
    data = json.loads(store.manifest_path.read_text())
    data["declared"]["vit_init"]["checks"].append("S16_i1k:a_check_nobody_builds")
    store.manifest_path.write_text(json.dumps(data))
    rows = run_checks([c for c in collect(store, ["vit_init"]) if c.metric == "could not run"], progress=False)
    assert [r.case for r in rows] == ["S16_i1k:a_check_nobody_builds"]
    assert "not built by the family's code" in rows[0].detail and "parity fixtures census" in rows[0].detail


def test_a_missing_or_empty_manifest_is_an_error(tmp_path):
    with pytest.raises(FixtureError, match="manifest not found"):
        collect(FixtureStore(tmp_path / "nothing"))
    assert "manifest not found" in FixtureStore(tmp_path / "nothing").verify()[0]
    empty = FixtureStore(tmp_path / "empty")
    empty.root.mkdir()
    empty.manifest_path.write_text(json.dumps({"schema": 1, "files": {}}))
    assert "lists no fixtures" in empty.verify()[0]
    rows = run_checks(collect(empty, ["vit_init"]), progress=False)
    assert len(rows) == 1 and not rows[0].ok


def test_the_declaration_is_recorded_and_matches_the_generator(tiny, store):
    """write_family declares the files; every family's declared files are exactly the cases its generator
    spec (make_requests) asks the reference for."""
    assert tiny.declared("fam")["files"] == ["fam/a.npz", "fam/b.npz"]
    from parity import families
    problems = []
    for name in families.names():
        decl = store.declared(name)
        if decl is None or not decl["checks"]:
            problems.append(f"family {name} declares no checks in the manifest")
            continue
        mod = families.get(name)
        if callable(getattr(mod, "generate", None)):   # records itself: only dynamics (big_vision's train.py)
            from parity.dynamics.check import REFERENCE_FIXTURE
            expected = [REFERENCE_FIXTURE]
        else:
            expected = sorted(f"{name}/{case}.npz" for case in mod.make_requests())
        if decl["files"] != expected:
            problems.append(f"family {name}: declared files differ from its generator spec")
    assert not problems, "\n".join(problems)


def test_declarations_are_current(store):
    """Each family builds exactly the checks the manifest declares for it. A new or renamed check needs
    `parity fixtures census --family F` (and the manifest committed with it), so a later loss of that
    check is a failure, not a smaller total."""
    from parity import families
    from parity.runner import census
    problems = []
    for name in families.names():
        decl = store.declared(name)
        try:
            built = census(families.get(name).checks(store))
        except FixtureError as e:
            problems.append(f"family {name}: its checks cannot be built from the store: {e}")
            continue
        if decl is None:
            problems.append(f"family {name} is not declared; run `parity fixtures census --family {name}`")
            continue
        for kind in ("checks", "controls", "internal"):
            extra, missing = sorted(set(built[kind]) - set(decl[kind])), sorted(set(decl[kind]) - set(built[kind]))
            if extra or missing:
                problems.append(f"family {name}: {kind} built but not declared {extra[:5]}, declared but not built "
                                f"{missing[:5]}; if intended, run `parity fixtures census --family {name}`")
    assert not problems, "\n".join(problems)


def test_progress_lines_when_not_a_terminal(capsys):
    from parity.checks import Check
    checks = [Check("fam", f"c{i}", "m", 1.0, lambda: 0.0) for i in range(3)]
    results = run_checks(checks, progress="lines", interval=0.0)
    assert all(r.ok for r in results)
    err = capsys.readouterr().err
    assert "parity: 3/3 checks run" in err and "0 problem(s) so far" in err


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


def test_cli_check_on_an_empty_store_fails(tmp_path):
    out = _parity("check", "--fixtures", str(tmp_path))
    assert out.returncode == 1 and "manifest not found" in out.stderr and "Traceback" not in out.stderr


def test_cli_rejects_unknown_family():
    out = _parity("check", "--family", "no_such_family")
    assert out.returncode != 0 and "unknown family no_such_family" in out.stderr


def test_generate_into_an_incomplete_store_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """`parity fixtures generate` writes the family, then cannot declare its checks when the manifest lists
    files this folder lacks: one clear line naming the missing file and the fix, exit 1."""
    import shutil

    import parity.cli as cli
    import parity.generate
    from parity.store import FixtureStore
    shutil.copy(FixtureStore().manifest_path, tmp_path / "manifest.json")
    monkeypatch.setattr(cli, "_big_vision_or_exit", lambda: None)
    monkeypatch.setattr(parity.generate, "generate_family", lambda n, store, onednn=None: [])
    rc = cli.main(["fixtures", "generate", "--family", "vit_forward", "--fixtures", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "cannot be declared" in err and "fixture file is missing" in err and "census --family vit_forward" in err
