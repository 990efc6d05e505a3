"""The reference side's error messages when big_vision is missing or misplaced."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from parity.reference_runner import ReferenceError, run_reference


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if k != "BIG_VISION_DIR"}
    env.update(kw)
    return env


@pytest.mark.parametrize("value, message", [
    (None, "BIG_VISION_DIR is not set"),
    ("/nonexistent/big_vision", "no such directory"),
])
def test_reference_names_the_variable_and_the_fix(value, message, tmp_path):
    env = _env() if value is None else _env(BIG_VISION_DIR=value)
    with pytest.raises(ReferenceError) as e:
        run_reference("preprocess", {"x": {"image": np.zeros((2, 2, 3), np.uint8)}}, environ=env)
    assert message in str(e.value) and "export BIG_VISION_DIR=" in str(e.value)


def test_package_folder_instead_of_checkout_gets_a_hint(tmp_path):
    (tmp_path / "pp").mkdir()
    (tmp_path / "pp" / "autoaugment.py").write_text("")
    out = subprocess.run([sys.executable, "-m", "reference", "info"], capture_output=True, text=True,
                         env=_env(BIG_VISION_DIR=str(tmp_path)), timeout=120)
    assert out.returncode == 3
    assert f"use its parent: BIG_VISION_DIR={tmp_path.parent}" in out.stderr


def test_cli_generate_without_big_vision_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "parity.cli", "fixtures", "generate", "--family", "preprocess"],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode != 0 and "BIG_VISION_DIR is not set" in out.stderr and "Traceback" not in out.stderr
