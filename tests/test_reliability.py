"""Issue 14: mistakes are reported in seconds as one clear line (before the parity gate or any check run),
runs never lose or corrupt data (a restart without --resume, a corrupt checkpoint, SIGINT/SIGTERM)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

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


# ---------------------------------------------------------------------------- parity train: before the gate
def _image_folder(root: Path, classes=("c0", "c1"), n_train=6, n_val=2, seed=1) -> Path:
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for j in range(n):
                img = np.clip(np.full((20, 20, 3), 60 + 120 * c) + rng.normal(0, 20, (20, 20, 3)), 0, 255)
                Image.fromarray(img.astype(np.uint8)).save(root / split / name / f"{j}.JPEG", format="JPEG")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _image_folder(tmp_path_factory.mktemp("rel_folder"))


TINY = {"num_classes": 2, "total_epochs": "none", "total_steps": 3, "schedule.warmup_steps": 1,
        "input.batch_size": 4, "input.num_workers": 0, "input.data.split": "train[:80%]",
        "input.pp.crop_size": 16, "input.pp.eval_resize_small": 18,
        "model.width": 16, "model.depth": 1, "model.mlp_dim": 16, "model.num_heads": 2, "model.patch_size": 8,
        "runtime.progress": False, "runtime.tensorboard": False, "evals.val.log_steps": 3,
        "evals.minival.log_steps": 3, "log_training_steps": 1}


def sets(**over):
    d = {**TINY, **{k.replace("__", "."): v for k, v in over.items()}}
    return [a for k, v in d.items() for a in ("--set", f"{k}={v}")]


def train_cli(capsys, *args):
    """`parity train ...` in this process: (exit code, stdout, stderr, seconds)."""
    from parity import cli
    t0 = time.perf_counter()
    try:
        rc = cli.main(["train", *map(str, args)])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err, time.perf_counter() - t0


def assert_refused_before_the_gate(rc, err, secs, *needles):
    assert rc == 2, err
    assert "Traceback" not in err and "parity gate" not in err, err       # nothing ran
    lines = [ln for ln in err.splitlines() if ln.strip() and "WARNING" not in ln]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert secs < 60, secs


def _variant(tmp_path, make):
    root = _image_folder(tmp_path / "data")
    make(root)
    return root


@pytest.mark.parametrize("case, needles", [
    ("missing_data", ["--data", "no such folder"]),
    ("num_classes", ["num_classes=2", "3 class folders", "--set num_classes=3"]),
    ("crop_size", ["input.pp.crop_size"]),
    ("warmup_steps", ["schedule.warmup_steps=5", "total_steps=3"]),
    ("warmup_epochs", ["schedule.warmup_steps=5", "total_epochs=1"]),
    ("workdir_under_a_file", ["--workdir", "is a file"]),
    ("device", ["runtime.device", "mps"]),
    ("empty_class", ["c2", "no images"]),
    ("val_only_class", ["val", "c9", "not in train"]),
])
def test_train_mistakes_are_one_line_before_the_gate(case, needles, folder, tmp_path, capsys):
    data, work, over = folder, tmp_path / "w", {}
    if case == "missing_data":
        data = tmp_path / "nope"
    elif case == "num_classes":
        data = _variant(tmp_path, lambda r: _image_folder(r, classes=("c2",)))
    elif case == "crop_size":
        over = {"input__pp__crop_size": 0}
    elif case == "warmup_steps":
        over = {"schedule__warmup_steps": 5}
    elif case == "warmup_epochs":    # 1 epoch of 10 images at batch 4 = 2 steps
        over = {"total_steps": "none", "total_epochs": 1, "schedule__warmup_steps": 5}
    elif case == "workdir_under_a_file":
        (tmp_path / "f").write_text("x")
        work = tmp_path / "f" / "w"
    elif case == "device":
        over = {"runtime__device": "mps"}
    elif case == "empty_class":
        data = _variant(tmp_path, lambda r: (r / "train" / "c2").mkdir())
    elif case == "val_only_class":
        data = _image_folder(tmp_path / "data")
        _image_folder(data, classes=("c9",), n_train=1, n_val=1)
        import shutil
        shutil.rmtree(data / "train" / "c9")
    rc, out, err, secs = train_cli(capsys, "--data", data, "--workdir", work, *sets(**over))
    assert_refused_before_the_gate(rc, err, secs, *needles)
    assert not work.exists() or case == "workdir_under_a_file"


def test_train_mistake_in_a_fresh_process_is_one_line(tmp_path):
    """The same through the installed entry point (no traceback from a real interpreter either)."""
    p, secs = parity("train", "--data", tmp_path / "nope", "--workdir", tmp_path / "w")
    assert_one_clear_line(p, "--data", "no such folder", rc=2)
    assert "parity gate" not in p.stderr and secs < 60


# ---------------------------------------------------------------------------- a workdir holding a run
def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _empty_store(tmp_path) -> Path:
    d = tmp_path / "no_fixtures"
    d.mkdir(exist_ok=True)
    return d


def test_forgetting_resume_loses_nothing_and_restart_archives(folder, tmp_path, capsys):
    """The issue's scenario: the same command again without --resume. It is refused in seconds with the
    two ways out; --restart moves the old run aside (nothing deleted); the new run's LAST and final JSON
    name files that exist; --resume then continues it."""
    work = tmp_path / "w"
    gate = ["--fixtures", _empty_store(tmp_path), "--skip-parity"]          # the gate is not the subject here
    base = ["--data", folder, "--workdir", work, *gate]
    rc, out, err, _ = train_cli(capsys, *base, *sets(total_steps=4, ckpt_steps=2))
    assert rc == 0, err
    before = {p.relative_to(work): _sha(p) for p in work.rglob("*") if p.is_file()}
    assert (work / "checkpoints" / "ckpt_00000004.pt").exists()

    rc, out, err, secs = train_cli(capsys, *base, *sets(total_steps=3, ckpt_steps=1))
    assert_refused_before_the_gate(rc, err, secs, str(work), "already holds a run", "step 4", "--resume",
                                   "--restart")
    assert {p.relative_to(work): _sha(p) for p in work.rglob("*") if p.is_file()} == before   # untouched

    rc, out, err, _ = train_cli(capsys, *base, "--restart", *sets(total_steps=3, ckpt_steps=1))
    assert rc == 0, err
    archives = [p for p in work.iterdir() if p.name.startswith("archive-")]
    assert len(archives) == 1 and "archive" in err
    assert {p.relative_to(archives[0]): _sha(p) for p in archives[0].rglob("*") if p.is_file()} == before
    summary = json.loads(out)
    assert Path(summary["checkpoint"]).exists() and summary["checkpoint"].endswith("ckpt_00000003.pt")
    losses = _train_rows(work)                  # item 6: the final JSON reports a smoothed loss too
    assert summary["last_loss"] == losses[3] and summary["last_loss_mean_steps"] == 3
    assert summary["last_loss_mean"] == pytest.approx(sum(losses.values()) / 3, rel=1e-12)
    from torch_impl.train.checkpoint import last_checkpoint
    assert last_checkpoint(work / "checkpoints").name == "ckpt_00000003.pt"
    # the old run's higher steps did not make the new checkpoints "old": nothing of the new run was pruned
    assert sorted(p.name for p in (work / "checkpoints").glob("ckpt_*.pt")) == [
        "ckpt_00000001.pt", "ckpt_00000002.pt", "ckpt_00000003.pt"]
    meta = json.loads((work / "metadata.json").read_text())
    assert len(meta["runs"]) == 1 and meta["runs"][0]["archived_previous_run"] == str(archives[0])

    rc, out, err, _ = train_cli(capsys, *base, "--resume", *sets(total_steps=5, ckpt_steps=1))
    assert rc == 0, err
    assert json.loads(out)["steps"] == 5
    meta = json.loads((work / "metadata.json").read_text())
    assert [r["start_step"] for r in meta["runs"]] == [0, 3]                 # the run history is appended
    from torch_impl.train.metrics import read_jsonl
    assert [r["step"] for r in read_jsonl(work / "metrics.jsonl") if r["split"] == "train"] == [1, 2, 3, 4, 5]


def test_resume_and_restart_are_exclusive(folder, tmp_path, capsys):
    rc, out, err, _ = train_cli(capsys, "--data", folder, "--workdir", tmp_path / "w", "--resume", "--restart")
    assert rc == 2 and "not allowed with argument" in err


# ---------------------------------------------------------------------------- checkpoints
def _state(step):
    import torch
    return {"step": step, "model": {"w": torch.full((3,), float(step))}, "optimizer": {}}


def test_pruning_is_by_step_and_never_deletes_what_LAST_names(tmp_path):
    from torch_impl.train import checkpoint as C
    d = tmp_path / "checkpoints"
    for s in (10, 20, 30):                      # checkpoints with later steps (e.g. an older run's)
        C.atomic_save(_state(s), C.ckpt_path(d, s))
    C.save_checkpoint(_state(2), d, 2, keep=1)
    assert C.last_checkpoint(d).name == "ckpt_00000002.pt"          # the old code pruned this very file
    assert sorted(C.checkpoint_files(d)) == [2, 10, 20, 30]
    # 9-digit steps sort after 8-digit ones by number (not by name)
    for s in (99_999_999, 100_000_000, 100_000_001):
        C.save_checkpoint(_state(s), d, s, keep=1)
    assert sorted(C.checkpoint_files(d)) == [100_000_000, 100_000_001]
    assert C.last_checkpoint(d) == C.ckpt_path(d, 100_000_001)


def test_LAST_moves_only_after_its_file_is_complete_and_fsynced(tmp_path, monkeypatch):
    import torch

    from torch_impl.train import checkpoint as C
    d = tmp_path / "checkpoints"
    C.save_checkpoint(_state(1), d, 1)
    events = []
    real_replace, real_fsync = os.replace, os.fsync
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", Path(b).name)), real_replace(a, b)))
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")
                                                                 .rsplit("/", 1)[-1])), real_fsync(fd)))
    C.save_checkpoint(_state(2), d, 2)
    names = [e for e in events]
    i_tmp = names.index(("fsync", "ckpt_00000002.pt.tmp"))
    i_ck = names.index(("replace", "ckpt_00000002.pt"))
    i_dir = names.index(("fsync", "checkpoints"), i_ck)
    i_last = names.index(("replace", "LAST"))
    assert i_tmp < i_ck < i_dir < i_last, names
    assert ("fsync", "LAST.tmp") in names[:i_last]

    # a crash while the checkpoint is being written: LAST still names a complete checkpoint
    def dies_midway(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        C.save_checkpoint(_state(3), d, 3)
    path, state = C.load_latest(d)
    assert path.name == "ckpt_00000002.pt" and state["step"] == 2 and not C.ckpt_path(d, 3).exists()


def test_a_corrupt_or_missing_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    from torch_impl.train import checkpoint as C
    d = tmp_path / "checkpoints"
    for s in (1, 2, 3):
        C.save_checkpoint(_state(s), d, s, keep=5)
    ck3 = C.ckpt_path(d, 3)
    ck3.write_bytes(ck3.read_bytes()[:100])                          # truncated (a disk filled up, a bad copy)
    warnings = []
    path, state = C.load_latest(d, warn=warnings.append)
    assert path.name == "ckpt_00000002.pt" and state["step"] == 2
    assert len(warnings) == 1 and "ckpt_00000003.pt" in warnings[0] and "ckpt_00000002.pt" in warnings[0]
    C.ckpt_path(d, 2).unlink()                                        # LAST -> 3 (corrupt), 2 gone
    path, _ = C.load_latest(d, warn=warnings.append)
    assert path.name == "ckpt_00000001.pt"
    ck3.unlink()                                                      # LAST names a file that is gone
    warnings.clear()
    path, _ = C.load_latest(d, warn=warnings.append)
    assert path.name == "ckpt_00000001.pt" and "does not exist" in warnings[0]
    C.ckpt_path(d, 1).write_bytes(b"garbage")
    with pytest.raises(C.CheckpointError, match="no readable checkpoint.*--restart"):
        C.load_latest(d, warn=warnings.append)


def test_resume_after_a_corrupt_checkpoint_is_bit_identical_and_keeps_the_logs(folder, tmp_path):
    """ckpt 4 truncated: --resume warns, continues from ckpt 2, and the losses equal an uninterrupted run;
    metrics.jsonl has every step once, the lines it replaced are kept in metrics.superseded.jsonl."""
    from torch_impl.config import apply_overrides, get_config
    from torch_impl.data import folder_splits
    from torch_impl.train import checkpoint as C
    from torch_impl.train.loop import train
    from torch_impl.train.metrics import read_jsonl
    cfg = apply_overrides(get_config("vit_s16_i1k"), {**TINY, "total_epochs": None, "total_steps": 6,
                                                      "ckpt_steps": 2, "evals.val.log_steps": 0,
                                                      "evals.minival.log_steps": 0})
    quiet = lambda *a, **k: None   # noqa: E731
    full = train(cfg, folder_splits(cfg, folder), tmp_path / "a", echo=quiet)
    train(cfg, folder_splits(cfg, folder), tmp_path / "b", stop_after_step=5, echo=quiet)
    ck4 = tmp_path / "b" / "checkpoints" / "ckpt_00000004.pt"
    ck4.write_bytes(ck4.read_bytes()[: ck4.stat().st_size // 2])
    said = []
    res = train(cfg, folder_splits(cfg, folder), tmp_path / "b", resume=True, echo=lambda *a, **k: said.append(a[0]))
    assert any("ckpt_00000004.pt" in s and "falling back" in s and "ckpt_00000002.pt" in s for s in said), said
    assert sorted(res.losses) == [3, 4, 5, 6] and all(res.losses[s] == full.losses[s] for s in res.losses)
    assert C.last_checkpoint(tmp_path / "b" / "checkpoints").name == "ckpt_00000006.pt"
    rows = [r["step"] for r in read_jsonl(tmp_path / "b" / "metrics.jsonl") if r["split"] == "train"]
    assert rows == [1, 2, 3, 4, 5, 6]
    old = [r["step"] for r in read_jsonl(tmp_path / "b" / "metrics.superseded.jsonl") if r["split"] == "train"]
    assert old == [3, 4, 5]


# ---------------------------------------------------------------------------- signals
DEMO = ["--data", "synthetic", "--set", "total_steps=10", "--set", "schedule.warmup_steps=3",
        "--set", "input.batch_size=16",
        "--set", "log_training_steps=1",
        "--set", "ckpt_steps=1000", "--set", "runtime.progress=false", "--set", "evals.val.log_steps=0",
        "--set", "evals.minival.log_steps=0", "--set", "runtime.tensorboard=false"]


def _train_rows(workdir: Path) -> dict[int, float]:
    """step -> training_loss from metrics.jsonl (a line being written by a running process is skipped)."""
    p = workdir / "metrics.jsonl"
    rows = {}
    for ln in (p.read_text().splitlines() if p.exists() else []):
        try:
            r = json.loads(ln)
        except json.JSONDecodeError:
            continue
        if r.get("split") == "train":
            rows[r["step"]] = r["training_loss"]
    return rows


def _popen_train(tmp_path, workdir, *extra):
    cmd = [sys.executable, "-m", "parity.cli", "train", *DEMO, "--workdir", str(workdir),
           "--fixtures", str(_empty_store(tmp_path)), "--skip-parity", *extra]
    # a session of its own: killpg reaches the DataLoader worker too, as Ctrl-C in a terminal does
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.fixture(scope="module")
def demo_reference(tmp_path_factory):
    """The losses of an uninterrupted `parity train` demo run (what the interrupted runs must reproduce)."""
    tmp = tmp_path_factory.mktemp("demo_ref")
    p = _popen_train(tmp, tmp / "ref")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    return _train_rows(tmp / "ref")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_finishes_the_step_checkpoints_and_resume_is_bit_identical(sig, demo_reference, tmp_path):
    """SIGINT as Ctrl-C sends it (to the process group: `parity train` and its DataLoader worker), SIGTERM as
    `kill` or a scheduler sends it (to the process); then --resume; the losses equal an uninterrupted run."""
    import signal
    signum = getattr(signal, sig)
    p = _popen_train(tmp_path, tmp_path / "w")
    deadline = time.time() + 240
    while max(_train_rows(tmp_path / "w"), default=0) < 2:
        assert p.poll() is None and time.time() < deadline, p.communicate()[1][-3000:]
        time.sleep(0.05)
    if sig == "SIGINT":
        os.killpg(p.pid, signum)
    else:
        os.kill(p.pid, signum)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err and f"{sig} received" in err and "--resume" in err, err[-3000:]
    summary = json.loads(out)
    stopped_at = summary["steps"]
    assert summary["stopped"] == sig and 2 <= stopped_at < 10
    from torch_impl.train.checkpoint import last_checkpoint
    ck = last_checkpoint(tmp_path / "w" / "checkpoints")
    assert ck.name == f"ckpt_{stopped_at:08d}.pt" and summary["checkpoint"] == str(ck)
    assert max(_train_rows(tmp_path / "w")) == stopped_at            # the step in flight was finished
    r = _popen_train(tmp_path, tmp_path / "w", "--resume")
    r.stdout_text, r.stderr_text = r.communicate(timeout=300)
    assert r.returncode == 0, r.stderr_text[-3000:]
    b = _train_rows(tmp_path / "w")
    assert sorted(b) == list(range(1, 11)) and b == demo_reference      # bit-identical losses, every step once


SECOND_SIGNAL = r"""
import os, signal, sys, time
import torch
import torch_impl.data as D

class TwoSignals(torch.utils.data.Dataset):
    # Ctrl-C twice while the batch of step 4 loads (num_workers=0: in this process)
    def __init__(self, inner, at):
        self.inner, self.at, self.n = inner, at, 0
    def __len__(self):
        return len(self.inner)
    def __getitem__(self, item):
        self.n += 1
        if self.n == self.at:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.5)                    # the first one is handled: "finishing the step"
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)                     # never reached: the second one aborts at once
        return self.inner[item]

real = D.splits_from_arg
def patched(cfg, data, **kw):
    sp = real(cfg, data, **kw)
    sp.train = TwoSignals(sp.train, 3 * cfg.input.batch_size + 2)
    return sp
D.splits_from_arg = patched
from parity.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_same_request_delivered_twice_is_not_a_second_ctrl_c():
    """Under torchrun one Ctrl-C reaches a worker twice (terminal + agent): within REPEAT_S it is one request;
    a second signal later aborts."""
    import signal

    from torch_impl.train.signals import REPEAT_S, StopOnSignal, TrainingAborted
    # the handlers this process had (default_int_handler, or SIG_IGN when started in the background by a
    # shell without job control), which the context must put back
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)         # e.g. a scheduler's SIGTERM right after
        time.sleep(0.05)
        assert stop.name == "SIGINT"
        time.sleep(REPEAT_S)
        with pytest.raises(TrainingAborted) as e:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert e.value.signum == signal.SIGINT and "aborted at once" in str(e.value)
    assert {s: signal.getsignal(s) for s in before} == before       # handlers restored


def test_a_second_ctrl_c_aborts_at_once(tmp_path):
    cmd = [sys.executable, "-c", SECOND_SIGNAL, "train", *DEMO, "--set", "input.num_workers=0",
           "--set", "ckpt_steps=2", "--workdir", str(tmp_path / "w"), "--fixtures", str(_empty_store(tmp_path)),
           "--skip-parity"]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 130, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "aborted at once" in p.stderr, p.stderr[-3000:]
    assert "ckpt_00000002.pt" in p.stderr.splitlines()[-1]              # names what --resume would use
    from torch_impl.train.checkpoint import last_checkpoint
    assert last_checkpoint(tmp_path / "w" / "checkpoints").name == "ckpt_00000002.pt"   # no step-4 checkpoint
    assert max(_train_rows(tmp_path / "w")) == 3 and time.perf_counter() - t0 < 240


class SignalAt(torch.utils.data.Dataset):
    """Sends ``signum`` to this process when item number ``at`` is loaded (num_workers=0: the main process),
    as a scheduler's SIGTERM reaching one rank of a job."""

    def __init__(self, inner, at, signum):
        self.inner, self.at, self.signum, self.n = inner, at, signum, 0

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, item):
        self.n += 1
        if self.n == self.at:
            os.kill(os.getpid(), self.signum)
        return self.inner[item]


def _ddp_worker(rank, world, folder, phases):
    """Runs ``phases`` [(port, workdir, out, signal_at, resume), ...] one after the other in this process
    (one spawn instead of three: process start-up dominates these tiny runs)."""
    import signal

    from torch_impl.config import apply_overrides, get_config
    from torch_impl.data import Splits, folder_splits
    from torch_impl.train.loop import train
    torch.set_num_threads(1)
    cfg = apply_overrides(get_config("vit_s16_i1k"), {**TINY, "total_epochs": None, "total_steps": 5,
                                                      "ckpt_steps": 100, "evals.val.log_steps": 0,
                                                      "evals.minival.log_steps": 0})
    for port, workdir, out, signal_at, resume in phases:
        os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                           "RANK": str(rank), "LOCAL_RANK": str(rank)})
        sp = folder_splits(cfg, folder)
        if rank == 1 and signal_at:      # only rank 1 is signalled; rank 0 must stop at the same step
            sp = Splits(SignalAt(sp.train, signal_at, signal.SIGTERM), sp.minival, sp.val, sp.num_classes, "sig")
        r = train(cfg, sp, workdir, resume=resume, echo=lambda *a, **k: None)   # a fresh process group each
        torch.save({"losses": r.losses, "stopped": r.stopped, "step": r.step, "checkpoint": str(r.checkpoint)},
                   f"{out}.{rank}")


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigterm_to_one_ddp_rank_stops_every_rank_at_the_same_step(folder, tmp_path):
    """2 gloo processes; SIGTERM reaches rank 1 only, while it loads step 3's batch: both ranks finish step
    3 (the stop flag rides on the step's all_reduce), one checkpoint is written, both exit cleanly, and a
    2-process --resume reproduces the uninterrupted 2-process losses bit for bit."""
    import torch.multiprocessing as mp
    # batch 4 = 2 ranks x 2: rank 1's 5th item is in step 3
    phases = [(_free_port(), str(tmp_path / "full"), str(tmp_path / "full.pt"), 0, False),
              (_free_port(), str(tmp_path / "w"), str(tmp_path / "stop.pt"), 5, False),
              (_free_port(), str(tmp_path / "w"), str(tmp_path / "res.pt"), 0, True)]
    mp.spawn(_ddp_worker, args=(2, str(folder), phases), nprocs=2, join=True)
    full, stop, res = ([torch.load(f"{tmp_path / name}.{r}") for r in (0, 1)]
                       for name in ("full.pt", "stop.pt", "res.pt"))
    assert [r["stopped"] for r in stop] == ["SIGTERM", "SIGTERM"] and [r["step"] for r in stop] == [3, 3]
    assert stop[0]["checkpoint"].endswith("ckpt_00000003.pt") and Path(stop[0]["checkpoint"]).exists()
    assert [r["stopped"] for r in full] == [None, None]
    assert sorted(res[0]["losses"]) == list(range(4, 6))
    assert all(res[0]["losses"][s] == full[0]["losses"][s] for s in range(4, 6))
    assert all(stop[0]["losses"][s] == full[0]["losses"][s] for s in range(1, 4))


# ---------------------------------------------------------------------------- dataset edge cases
def test_an_unreadable_val_image_is_skipped_and_counted_never_replaced(tmp_path, caplog):
    from torch_impl.config import apply_overrides, get_config
    from torch_impl.data import folder_splits
    from torch_impl.train.loop import train
    root = _image_folder(tmp_path / "data", n_val=3)
    (root / "val" / "c1" / "1.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cfg = apply_overrides(get_config("vit_s16_i1k"), {**TINY, "total_epochs": None, "total_steps": 1,
                                                      "evals.val.log_steps": 1, "evals.minival.log_steps": 0,
                                                      "evals.val.batch_size": 4})
    with caplog.at_level("WARNING"):
        r = train(cfg, folder_splits(cfg, root), tmp_path / "w", echo=lambda *a, **k: None)
    ev = r.evals["val@1"]
    assert ev["n"] == 5 and ev["skipped"] == 1                          # 6 files, one unreadable, none twice
    assert any("c1/1.JPEG" in m and "not evaluated" in m for m in caplog.messages), caplog.messages


def test_folder_edge_cases_are_errors_or_warnings(tmp_path, caplog):
    import shutil

    from torch_impl.config import apply_overrides, get_config
    from torch_impl.data import folder_splits
    cfg = apply_overrides(get_config("vit_s16_i1k"), {**TINY, "total_epochs": None})
    root = _image_folder(tmp_path / "a")
    (root / "train" / "c2").mkdir()                                     # an empty class folder
    with pytest.raises(ValueError, match=r"train/c2.*no images"):
        folder_splits(cfg, root)
    root = _image_folder(tmp_path / "b")
    _image_folder(root, classes=("c9",), n_train=1, n_val=1)
    shutil.rmtree(root / "train" / "c9")                                # a class only in val/
    with pytest.raises(ValueError, match=r"val.*c9.*not in train"):
        folder_splits(cfg, root)
    root = _image_folder(tmp_path / "c")
    shutil.rmtree(root / "val")                                         # no val/ at all
    with caplog.at_level("WARNING"):
        sp = folder_splits(cfg, root)
    assert sp.val is None and any("no val/" in m for m in caplog.messages), caplog.messages
    root = _image_folder(tmp_path / "d")
    for f in (root / "val" / "c1").iterdir():                           # a val class folder without images
        f.unlink()
    caplog.clear()
    with caplog.at_level("WARNING"):
        sp = folder_splits(cfg, root)
    assert len(sp.val) == 2 and any("val/c1" in m and "no images" in m for m in caplog.messages), caplog.messages
