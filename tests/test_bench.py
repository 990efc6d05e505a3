"""Each benchmark runs end to end in a tiny configuration (a few images, one repeat): proves the scripts
work and print their tables. No timing assertions: figures on a shared CI machine mean nothing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parity.bench import common
from parity.cli import main as parity_main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_pinning(monkeypatch):
    # The benchmarks pin the process to one core and one torch thread; not inside the test process.
    monkeypatch.setattr(common, "pin_to_core", lambda core: None)


def test_bench_pipeline_tiny(no_pinning, capsys, tmp_path):
    out = tmp_path / "p.json"
    rc = parity_main(["bench", "pipeline", "--n", "4", "--repeats", "1", "--warmup", "1", "--no-big-vision",
                      "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    for name in ("fast (ours)", "reference path (ours)", "torchvision v2", "x vs torchvision v2", "CPU ms/item"):
        assert name in text
    data = json.loads(out.read_text())
    assert data["randaug"] and all(len(v) == 1 and v[0] > 0 for v in data["series"].values())
    assert set(data["cpu_ms"]) == set(data["series"]) and all(v[0] > 0 for v in data["cpu_ms"].values())


def test_bench_pipeline_rejects_unknown_contender(no_pinning):
    with pytest.raises(SystemExit, match="unknown contender"):
        parity_main(["bench", "pipeline", "--n", "1", "--repeats", "1", "--only", "nope", "--no-big-vision"])


def test_bench_randaug_tiny(no_pinning, capsys):
    rc = parity_main(["bench", "randaug", "--n", "2", "--repeats", "1", "--size", "32", "--batch", "2",
                      "--ops", "Rotate", "Equalize", "SolarizeAdd"])
    text = capsys.readouterr().out
    assert rc == 0 and "Rotate" in text and "torchvision" in text and "SolarizeAdd" in text


def test_bench_model_tiny(no_pinning, capsys):
    rc = parity_main(["bench", "model", "--variant", "Ti/16", "--depth", "1", "--image-size", "32", "--batch", "2",
                      "--steps", "1", "--repeats", "1", "--warmup", "0"])
    assert rc == 0 and "forward+backward" in capsys.readouterr().out


def test_bench_batched_tiny(no_pinning, capsys):
    rc = parity_main(["bench", "batched", "--batch", "2", "--steps", "1", "--repeats", "1", "--size", "32"])
    assert rc == 0 and "batched on cpu" in capsys.readouterr().out


def test_bench_runs_as_a_module_from_a_checkout():
    """`python -m parity.cli bench model ...` works from a checkout (what parity/bench/gpu_session.sh runs)."""
    proc = subprocess.run([sys.executable, "-m", "parity.cli", "bench", "model", "--variant", "Ti/16", "--depth", "1",
                           "--image-size", "32", "--batch", "1", "--steps", "1", "--repeats", "1", "--warmup", "0",
                           "--forward-only"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "img/s" in proc.stdout


@pytest.mark.gpu
def test_bench_gpu_paths(capsys):
    rc = parity_main(["bench", "model", "--device", "cuda", "--variant", "Ti/16", "--depth", "2", "--batch", "8",
                      "--steps", "2", "--repeats", "1"])
    assert rc == 0 and "MFU" in capsys.readouterr().out
    rc = parity_main(["bench", "batched", "--device", "cuda", "--batch", "16", "--steps", "1", "--repeats", "1"])
    assert rc == 0


@pytest.mark.live
@pytest.mark.slow
def test_bench_big_vision_pipeline_tiny(big_vision_env):
    """big_vision's tf.data pipeline in the reference subprocess, on the same JPEGs."""
    from parity import photos
    from parity.bench import pipeline
    jpegs = list(photos.imagenet_like_jpegs().values())
    rates, cpu_ms = pipeline.big_vision(jpegs, n=32, repeats=1, warmup=0, core=None, randaug=True)
    assert len(rates) == 1 and rates[0] > 0 and len(cpu_ms) == 1 and cpu_ms[0] > 0
    server = pipeline.BigVisionServer(jpegs, n=8, warmup=0, core=None, randaug=False)  # interleaved mode
    try:
        for _ in range(2):
            rate, cpu = server.run()
            assert rate > 0 and cpu > 0
    finally:
        server.close()
    assert server.proc.returncode == 0


def test_bench_e2e_runs_the_training_loop_on_made_up_jpegs(tmp_path, capsys):
    """The end-to-end benchmark's plumbing on the CPU (tiny model): model-only, each input pipeline alone
    and the training loop with randaug in the workers, on the device and split, all in one table."""
    out = tmp_path / "e2e.json"
    rc = parity_main(["bench", "e2e", "--device", "cpu", "--batch", "4", "--steps", "3", "--warmup", "1",
                      "--images", "16", "--classes", "2", "--depth", "1", "--image-size", "32", "--no-compile",
                      "--workers", "0", "--augment", "loader", "device", "split", "device-decode", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("model only", "randaug in the loader workers", "randaug on the device", "input pipeline alone",
                 "randaug and decode on the device", "randaug split (30% of the images on the device)"):
        assert name in text
    series = json.loads(out.read_text())["series"]
    assert len(series) == 9 and all(r > 0 for rates in series.values() for r in rates)


def test_check_device_option():
    from parity.runner import device_families
    assert device_families() == ["fast_paths", "preprocess", "vit_forward"]
    import torch
    if not torch.cuda.is_available():
        assert parity_main(["check", "--family", "fast_paths", "--device", "cuda"]) == 2


@pytest.mark.gpu
def test_check_on_cuda_fast_paths():
    assert parity_main(["check", "--family", "fast_paths", "--device", "cuda"]) == 0


def test_bench_decode_reports_the_crop_window_decode_against_the_old_one(capsys):
    assert parity_main(["bench", "decode", "--device", "cpu", "--n", "4", "--repeats", "1",
                        "--no-big-vision"]) == 0
    out = capsys.readouterr().out
    assert "crop window (ours)" in out and "old: rows + slice (ours)" in out and "load average" in out
    assert "CPU ms/item" in out
