"""Each benchmark runs end to end in a tiny configuration (a few images, one repeat): proves the scripts
work and print their tables. No timing assertions: figures on a shared CI machine mean nothing."""
from __future__ import annotations

import json
import subprocess
import sys
import time
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
    cpus = []
    try:
        for _ in range(2):
            rate, cpu = server.run()
            assert rate > 0 and cpu > 0
            cpus.append(cpu)
            time.sleep(0.5)   # tf.data reads ahead meanwhile; charged to the next repeat
    finally:
        server.close()
    assert server.proc.returncode == 0
    # tf.data's default options (read-ahead on) in serve mode; the charges are contiguous (nothing between
    # the repeats goes uncharged), so the total is the mean of the two equal-sized repeats' charges
    assert server.info["read_ahead"] is True and server.images_total == 2 * server.info["images"]
    assert server.cpu_total_ms == pytest.approx(sum(cpus) / 2, rel=1e-9)


def test_cpu_ledger_charges_work_between_repeats_to_the_next_repeat():
    """reference.bench_pipeline.CpuLedger (no TF at import) with a scripted clock: CPU before start() (the end of
    the warm-up) is not charged, background CPU between repeats is charged to the next repeat, the total is all CPU since start
    over all images."""
    from reference.bench_pipeline import CpuLedger
    now = [5.0]   # CPU seconds already spent (TF import, warm-up, its read-ahead): never charged
    ledger = CpuLedger(clock=lambda: now[0])
    with pytest.raises(RuntimeError):
        ledger.charge(10)
    assert ledger.total_ms is None
    ledger.start()
    now[0] += 0.010            # repeat 1: 10 ms for 10 images
    assert ledger.charge(10) == pytest.approx(1.0)
    now[0] += 0.004            # read-ahead in the background while the caller's contenders run ...
    ledger.start()             # ... a later start() does not move the mark
    now[0] += 0.006            # repeat 2's own work (it found 4 ms worth of images already made)
    assert ledger.charge(10) == pytest.approx(1.0)
    now[0] += 0.030            # repeat 3: 20 images
    assert ledger.charge(20) == pytest.approx(1.5)
    assert ledger.cpu_ms == pytest.approx([1.0, 1.0, 1.5])
    assert ledger.images == 40 and ledger.total_ms == pytest.approx(50 / 40)
    with pytest.raises(ValueError):
        ledger.charge(0)


def test_bench_pipeline_interleaved_reports_paired_cpu_ratios(no_pinning, monkeypatch, capsys, tmp_path):
    """The interleaved report, with a scripted stand-in for the big_vision subprocess (no TF here): its
    per-repeat CPU ms paired with fast (ours)'s repeat by repeat, their median, the total figure, the note that
    its img/s do not compare; all in the --json too."""
    from parity import reference_runner
    from parity.bench import pipeline
    bv_cpu = iter([4.0, 8.0, 2.0])

    class FakeServer(pipeline.BigVisionServer):
        def __init__(self, jpegs, *, n, warmup, core, randaug, read_ahead=True):
            self.cpu_total_ms, self.images_total, self.n, self.charged = None, 0, n, []

        def run(self):
            self.charged.append(next(bv_cpu))
            self.images_total += self.n
            self.cpu_total_ms = sum(self.charged) / len(self.charged)
            return 100.0, self.charged[-1]

        def close(self):
            pass

    monkeypatch.setattr(pipeline, "BigVisionServer", FakeServer)
    monkeypatch.setattr(reference_runner, "big_vision_dir", lambda *a, **k: "/nonexistent")
    ours_cpu = iter([2.0, 2.0, 4.0])
    monkeypatch.setattr(common, "timed", lambda fn, n: (50.0, next(ours_cpu)))
    out = tmp_path / "p.json"
    rc = parity_main(["bench", "pipeline", "--n", "2", "--repeats", "3", "--warmup", "0", "--only", "fast (ours)",
                      "--interleave-big-vision", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    # paired ratios 4/2, 8/2, 2/4 -> 2.0, 4.0, 0.5: median 2.00; totals (14/3) / (8/3) = 1.75
    assert "median of the paired per-repeat ratios 2.00x" in text and "totals 1.75x" in text
    assert "not comparable" in text and "4.667 ms/image" in text
    data = json.loads(out.read_text())
    assert data["interleaved_big_vision"] is True
    assert data["cpu_ms"]["big_vision tf.data"] == [4.0, 8.0, 2.0]
    fv = data["fast_vs_big_vision"]
    assert fv["paired_cpu_ratios"] == [2.0, 4.0, 0.5] and fv["paired_cpu_ratio_median"] == 2.0
    assert fv["total_cpu_ratio"] == pytest.approx(1.75) and data["big_vision_cpu_total_ms"] == pytest.approx(14 / 3)

def test_bench_e2e_runs_the_training_loop_on_made_up_jpegs(tmp_path, capsys):
    """The end-to-end benchmark's plumbing on the CPU (tiny model): model-only, each input pipeline alone (the
    workers' one also without the batch pool) and the training loop with randaug in the workers, on the device
    and split, all in one table."""
    out = tmp_path / "e2e.json"
    rc = parity_main(["bench", "e2e", "--device", "cpu", "--batch", "4", "--steps", "3", "--warmup", "1",
                      "--images", "16", "--classes", "2", "--depth", "1", "--image-size", "32", "--no-compile",
                      "--workers", "0", "--augment", "loader", "device", "split", "device-decode", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("model only", "randaug in the loader workers", "randaug on the device", "input pipeline alone",
                 "randaug and decode on the device", "randaug split (30% of the images on the device)",
                 "input pipeline alone (randaug in the workers), no batch pool"):
        assert name in text
    series = json.loads(out.read_text())["series"]
    assert len(series) == 10 and all(r > 0 for rates in series.values() for r in rates)


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
