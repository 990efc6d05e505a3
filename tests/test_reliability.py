"""Issue 14: mistakes are reported in seconds as one clear line (before the parity gate or any check run),
runs never lose or corrupt data (a restart without --resume, a corrupt checkpoint, SIGINT/SIGTERM)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def parity(*args, env=None, timeout=120):
    """Run `parity ...` in a fresh process; returns (CompletedProcess, seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "parity.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})
    return p, time.perf_counter() - t0


def assert_one_clear_line(p, *needles, rc=None):
    """Exit code != 0, no traceback, and one stderr line naming the problem (plus nothing but warnings)."""
    assert p.returncode != 0 if rc is None else p.returncode == rc, (p.returncode, p.stderr[-3000:])
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and "WARNING" not in ln]
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------- parity check / fixtures
def test_check_unsupported_device_is_refused_before_any_check():
    p, secs = parity("check", "--device", "mps")
    assert_one_clear_line(p, "--device mps", "use cpu or cuda", rc=2)
    assert secs < 60 and not p.stdout


def test_check_unwritable_report_is_refused_before_the_checks(tmp_path):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    p, secs = parity("check", "--report", afile / "report")     # a folder cannot be made under a file
    assert_one_clear_line(p, "--report", str(afile), rc=2)
    assert secs < 60 and not p.stdout                            # no check ran (the table would be on stdout)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_read_only_report_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    p, _ = parity("check", "--report", ro / "report")
    assert_one_clear_line(p, "--report", "cannot write", rc=2)


@pytest.mark.parametrize("value, message", [("/nonexistent/big_vision", "no such folder"),
                                            (str(ROOT), "not a big_vision checkout")])
def test_big_vision_dir_pointing_nowhere(value, message):
    for cmd in (["fixtures", "generate", "--family", "preprocess"], ["check", "--live", "--family", "preprocess"]):
        p, secs = parity(*cmd, env={"BIG_VISION_DIR": value})
        assert_one_clear_line(p, f"BIG_VISION_DIR={value}", message, "export BIG_VISION_DIR=", rc=2)
        assert secs < 60


def test_fixtures_verify_truncated_manifest(tmp_path):
    store = tmp_path / "fx"
    store.mkdir()
    text = (ROOT / "fixtures" / "manifest.json").read_text()
    (store / "manifest.json").write_text(text[: len(text) // 3])
    p, _ = parity("fixtures", "verify", "--fixtures", store)
    assert_one_clear_line(p, "manifest.json", "not valid JSON", "git checkout", rc=1)
