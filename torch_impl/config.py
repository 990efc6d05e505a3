"""Typed training configs with big_vision's field names, overridable from the command line.

big_vision configs are code (``get_config()`` returning an ``ml_collections.ConfigDict``) and are
overridden with ``--config.lr=0.003``. We keep the same idea with plain dataclasses: the field names are
big_vision's (``total_epochs``, ``input.batch_size``, ``schedule.warmup_steps``, ``optax.mu_dtype``,
``mixup.p`` ...), every field has a type, and an override is parsed to that type or rejected with a
message naming the key. A key that does not exist is an error listing the closest existing keys.

Fields that big_vision expresses as a preprocessing string (``input.pp``) are spelled out as typed fields
of ``input.pp`` here; fields that only the torch loop needs live in ``runtime``.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union


class ConfigError(ValueError):
    """A bad config key or value; the message names the key and how to fix it."""


@dataclass
class DataConfig:
    name: str = "imagenet2012"
    # big_vision split syntax: "train[:99%]" trains on a 99% class-stratified part of train and keeps the
    # rest as minival; "train" (or "train[:100%]") trains on everything (then there is no minival).
    split: str = "train[:99%]"


@dataclass
class PPConfig:
    """big_vision's pp strings, field by field.

    train: decode_jpeg_and_inception_crop(224)|flip_lr|randaug(2,10)|value_range(-1,1)
    eval:  decode|resize_small(256)|central_crop(224)|value_range(-1,1)
    """
    crop_size: int = 224
    inception_area_min: float = 0.05
    flip_lr: bool = True
    randaug_num_layers: int = 2
    randaug_magnitude: int = 10        # 0 disables randaug
    eval_resize_small: int = 256
    # big_vision's train op (tf.image.decode_and_crop_jpeg) and eval `decode` use TF's default fast DCT,
    # not INTEGER_ACCURATE: precise=False asks torch_impl.preprocess.decode_jpeg for the same.
    decode_precise: bool = False
    # JPEG files go through torch_impl.fast_pipeline (libjpeg-turbo via simplejpeg) when it is installed;
    # false: always torch_impl.preprocess.train_pipeline.
    fast_decode: bool = True


@dataclass
class InputConfig:
    data: DataConfig = field(default_factory=DataConfig)
    batch_size: int = 1024             # the GLOBAL batch, whatever the number of processes
    pp: PPConfig = field(default_factory=PPConfig)
    split_seed: int = 0                # seeds the hash of the stratified train/minival split
    num_workers: int = 8               # DataLoader workers per process


@dataclass
class ModelConfig:
    variant: str = "S/16"
    # big_vision's vit_s16_i1k.py has rep_size=True; the mup-vit study's 76.7% variant (the one this
    # project reproduces) uses a plain linear head, so rep_size=False.
    rep_size: Union[bool, int] = False
    pool_type: str = "gap"
    posemb: str = "sincos2d"
    head_zeroinit: bool = True
    dropout: float = 0.0
    # Optional overrides of the variant (torch_impl.model.ViT **overrides); None keeps the variant's.
    width: Optional[int] = None
    depth: Optional[int] = None
    mlp_dim: Optional[int] = None
    num_heads: Optional[int] = None
    patch_size: Optional[int] = None


@dataclass
class OptaxConfig:
    mu_dtype: str = "bfloat16"


@dataclass
class ScheduleConfig:
    warmup_steps: int = 10_000         # linear warmup from 0, as big_vision
    decay_type: str = "cosine"


@dataclass
class MixupConfig:
    p: float = 0.2                     # a ~ Beta(p, p), a = max(a, 1 - a); 0 disables mixup
    fold_in: Optional[str] = None


@dataclass
class EvalSplitConfig:
    log_steps: int = 2500              # 0 disables this evaluator
    batch_size: int = 1024             # global eval batch
    max_examples: Optional[int] = None  # evaluate on a prefix only (quick looks); None = all


@dataclass
class EvalsConfig:
    val: EvalSplitConfig = field(default_factory=EvalSplitConfig)
    minival: EvalSplitConfig = field(default_factory=EvalSplitConfig)


@dataclass
class RuntimeConfig:
    """Torch-only knobs (big_vision has no counterpart)."""
    device: str = "auto"               # auto | cuda | cpu
    amp_dtype: str = "bfloat16"        # autocast dtype on CUDA: bfloat16 | float32 (= off)
    compile: bool = False              # torch.compile the model
    grad_accum_steps: int = 0          # 0 = derive from micro_batch_size (or 1)
    micro_batch_size: int = 0          # per-process per-forward batch; 0 = batch_size / world_size
    # RandAugment17 + value_range on the training device (torch_impl.batched_augment, each sample its own
    # ops/signs/centres) instead of in the DataLoader workers, which then ship uint8 crops (4x fewer bytes).
    # Same per-image semantics (parity family fast_paths checks the batched ops); frees the CPU cores.
    device_augment: bool = False
    # Also decode the JPEGs on the device (nvjpeg through torchvision.io.decode_jpeg), then crop + resize +
    # flip there (batched_augment.batched_crop_resize); the workers only read files and draw the crop and
    # flip. Implies device_augment. NOT big_vision's pixels: nvjpeg differs from TF's fast-DCT libjpeg decode
    # (up to ~60 levels, mean ~1.4 on 500x375 q90 photos; docs/performance.md). Off by default for that reason.
    device_decode: bool = False
    # value_range(-1, 1) on the training device instead of in the DataLoader workers (which then ship uint8
    # batches: 4x fewer bytes through shared memory, pinning and the host-to-device copy). Exact: the same
    # float32 division (fast_pipeline.to_value_range; the preprocess family checks it on the device).
    # None = on when training on CUDA (the H100 e2e run: float32 batches from 15 workers capped the loop
    # with RandAugment in the workers), off on the CPU. Implied by device_augment.
    device_value_range: Optional[bool] = None
    # Share (0..1) of the images whose RandAugment17 runs on the device; the workers augment the rest. Which
    # images is a function of each sample's seed (so a resume sees the same split). Balances a run that is
    # CPU-bound with RandAugment in the workers and GPU-bound with all of it on the device (docs/performance.md).
    # 0 = all in the workers; device_augment = all on the device. Implies device_value_range.
    device_augment_fraction: float = 0.0
    # On CUDA, keep the patch-embedding (stem) convolution's weight channels-last: A/B on one H100 in one
    # call (`parity bench model` with and without --no-channels-last), ViT-S/16 + big_vision's optimizer:
    # 9,081 vs 7,800 img/s (docs/performance.md). No effect on CPU.
    channels_last_stem: bool = True
    tensorboard: bool = True
    wandb: bool = False                # optional, needs `pip install wandb`
    progress: bool = True
    keep_checkpoints: int = 2          # step checkpoints kept besides `last`


@dataclass
class TrainConfig:
    seed: int = 0
    total_epochs: Optional[float] = 90
    total_steps: Optional[int] = None   # if set, overrides total_epochs (big_vision: only one may be set)
    num_classes: int = 1000
    loss: str = "softmax_xent"
    input: InputConfig = field(default_factory=InputConfig)
    log_training_steps: int = 50
    ckpt_steps: int = 1000
    model_name: str = "vit"
    model: ModelConfig = field(default_factory=ModelConfig)
    grad_clip_norm: Optional[float] = 1.0
    optax_name: str = "scale_by_adam"
    optax: OptaxConfig = field(default_factory=OptaxConfig)
    lr: float = 0.001
    wd: float = 0.0001                  # big_vision units: decoupled, multiplied by the schedule, not by lr
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    evals: EvalsConfig = field(default_factory=EvalsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    # ------------------------------------------------------------------ helpers
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def keys(self) -> list[str]:
        return flat_keys(self)

    def get(self, key: str) -> Any:
        obj = self
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def set(self, key: str, value: Any) -> None:
        """Set a dotted key; a string value is parsed to the field's type."""
        set_key(self, key, value)

    def train_fraction(self) -> float:
        return parse_split(self.input.data.split)


# ---------------------------------------------------------------------- registry
def vit_s16_i1k() -> TrainConfig:
    """big_vision configs/vit_s16_i1k.py in torch terms (the defaults above ARE that config)."""
    return TrainConfig()


def tiny_demo_overrides() -> dict[str, Any]:
    """What `--data synthetic` applies on top of any config: a tiny ViT that trains in ~2 minutes on 2 CPU
    cores. Explicit `--set` overrides win over these."""
    return {
        "total_epochs": None, "total_steps": 200, "num_classes": 10,
        "input.batch_size": 32, "input.num_workers": 1,
        "input.pp.crop_size": 32, "input.pp.eval_resize_small": 36, "input.pp.inception_area_min": 0.3,
        "input.pp.randaug_magnitude": 5,
        "model.variant": "Ti/8", "model.width": 64, "model.depth": 2, "model.mlp_dim": 128, "model.num_heads": 2,
        "lr": 0.003, "schedule.warmup_steps": 30,
        "log_training_steps": 20, "ckpt_steps": 100,
        "evals.val.log_steps": 100, "evals.minival.log_steps": 100,
        "evals.val.batch_size": 128, "evals.minival.batch_size": 128,
    }


CONFIGS = {"vit_s16_i1k": vit_s16_i1k}


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        close = difflib.get_close_matches(name, CONFIGS, n=3, cutoff=0.3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown config {name!r}; known: {', '.join(sorted(CONFIGS))}.{hint}")
    return CONFIGS[name]()


# ---------------------------------------------------------------------- split syntax
def parse_split(split: str) -> float:
    """'train' -> 1.0, 'train[:99%]' -> 0.99 (the training fraction). Other forms are rejected."""
    s = split.replace(" ", "")
    if s == "train":
        return 1.0
    if s.startswith("train[:") and s.endswith("%]"):
        try:
            pct = float(s[len("train[:"):-2])
        except ValueError:
            pct = -1.0
        if 0 < pct <= 100:
            return pct / 100.0
    raise ConfigError(f"input.data.split={split!r}: expected 'train' or 'train[:P%]' with 0 < P <= 100 "
                      "(e.g. 'train[:99%]'; the rest of train becomes the stratified minival)")


# ---------------------------------------------------------------------- overrides
def flat_keys(obj, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(v):
            out.extend(flat_keys(v, key + "."))
        else:
            out.append(key)
    return out


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_bool(s: str) -> bool:
    low = s.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{s!r} is not a boolean (true/false)")


def _convert(value: Any, tp: Any) -> Any:
    """Convert ``value`` (a string from the command line, or a Python value) to type ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            if type(None) in args:
                return None
            raise ValueError("None is not allowed here")
        errors = []
        # bool before int so 'true' is a bool and '64' an int for Union[bool, int]
        for a in sorted((a for a in args if a is not type(None)), key=lambda a: a is not bool):
            try:
                return _convert(value, a)
            except (ValueError, TypeError) as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return _parse_bool(value)
        raise TypeError(f"{value!r} is not a boolean")
    if tp is int:
        if isinstance(value, bool):
            raise TypeError(f"{value!r} is a boolean, not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                raise ValueError(f"{value!r} is not an integer") from None
        raise TypeError(f"{value!r} is not an integer")
    if tp is float:
        if isinstance(value, bool):
            raise TypeError(f"{value!r} is a boolean, not a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.replace("_", ""))
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
        raise TypeError(f"{value!r} is not a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"{value!r} is not a string")
    raise TypeError(f"unsupported field type {tp!r}")


def _type_name(tp) -> str:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def unknown_key_error(cfg: TrainConfig, key: str) -> ConfigError:
    keys = flat_keys(cfg)
    close = difflib.get_close_matches(key, keys, n=5, cutoff=0.5)
    # also match on the last component (users often forget the section: 'warmup_steps')
    last = key.split(".")[-1]
    close += [k for k in keys if k.split(".")[-1] == last and k not in close]
    if not close:
        close = difflib.get_close_matches(last, keys, n=3, cutoff=0.3)
    hint = f" Did you mean: {', '.join(close)}?" if close else " `--print-config` lists every key."
    return ConfigError(f"unknown config key {key!r}.{hint}")


def set_key(cfg: TrainConfig, key: str, value: Any) -> None:
    parts = key.split(".")
    obj = cfg
    for part in parts[:-1]:
        if not (dataclasses.is_dataclass(obj) and part in {f.name for f in dataclasses.fields(obj)}):
            raise unknown_key_error(cfg, key)
        obj = getattr(obj, part)
        if not dataclasses.is_dataclass(obj):
            raise unknown_key_error(cfg, key)
    name = parts[-1]
    if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
        raise unknown_key_error(cfg, key)
    if dataclasses.is_dataclass(getattr(obj, name)):
        raise ConfigError(f"config key {key!r} is a section; set one of its fields: "
                          + ", ".join(k for k in flat_keys(cfg) if k.startswith(key + ".")))
    tp = _field_types(type(obj))[name]
    try:
        setattr(obj, name, _convert(value, tp))
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config key {key!r} expects {_type_name(tp)}, got {value!r}: {e}") from None


def parse_override(text: str) -> tuple[str, str]:
    """'input.batch_size=256' or '--config.input.batch_size=256' -> ('input.batch_size', '256')."""
    t = text.strip()
    for prefix in ("--config.", "config."):
        if t.startswith(prefix):
            t = t[len(prefix):]
    if "=" not in t:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. input.batch_size=256")
    key, value = t.split("=", 1)
    return key.strip(), value


def apply_overrides(cfg: TrainConfig, overrides: list[str] | dict[str, Any]) -> TrainConfig:
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        set_key(cfg, key, value)
    validate(cfg)
    return cfg


def uses_cuda(device: str) -> bool:
    """``runtime.device`` (auto | cuda | cpu) -> whether the run trains on CUDA."""
    import torch
    return torch.cuda.is_available() if device == "auto" else device == "cuda"


def validate(cfg: TrainConfig) -> None:
    """Cross-field checks; each error names the key."""
    parse_split(cfg.input.data.split)
    if cfg.total_steps is None and cfg.total_epochs is None:
        raise ConfigError("set one of total_steps or total_epochs")
    if cfg.input.batch_size <= 0:
        raise ConfigError(f"input.batch_size must be positive, got {cfg.input.batch_size}")
    pp = cfg.input.pp
    if pp.crop_size < 1:
        raise ConfigError(f"input.pp.crop_size must be a positive number of pixels, got {pp.crop_size} "
                          "(vit_s16_i1k: 224)")
    if pp.eval_resize_small < pp.crop_size:
        raise ConfigError(f"input.pp.eval_resize_small={pp.eval_resize_small} is smaller than input.pp.crop_size="
                          f"{pp.crop_size}: the eval central crop would not fit (vit_s16_i1k: 256 and 224)")
    if not 0.0 < pp.inception_area_min <= 1.0:
        raise ConfigError(f"input.pp.inception_area_min must be in (0, 1], got {pp.inception_area_min}")
    if cfg.total_steps is not None and cfg.total_steps < 1:
        raise ConfigError(f"total_steps must be at least 1, got {cfg.total_steps}")
    for key in ("input.num_workers", "ckpt_steps", "log_training_steps", "schedule.warmup_steps",
                "runtime.keep_checkpoints"):
        if cfg.get(key) < 0:
            raise ConfigError(f"{key} must be >= 0, got {cfg.get(key)}")
    if cfg.optax.mu_dtype not in ("bfloat16", "float32"):
        raise ConfigError(f"optax.mu_dtype must be bfloat16 or float32, got {cfg.optax.mu_dtype!r}")
    if cfg.runtime.amp_dtype not in ("bfloat16", "float32"):
        raise ConfigError(f"runtime.amp_dtype must be bfloat16 or float32, got {cfg.runtime.amp_dtype!r}")
    if not 0.0 <= cfg.runtime.device_augment_fraction <= 1.0:
        raise ConfigError(f"runtime.device_augment_fraction must be in [0, 1], got "
                          f"{cfg.runtime.device_augment_fraction!r}")
    if cfg.runtime.device not in ("auto", "cuda", "cpu"):
        raise ConfigError(f"runtime.device must be auto, cuda or cpu, got {cfg.runtime.device!r}")
    if cfg.loss != "softmax_xent":
        raise ConfigError(f"loss={cfg.loss!r}: only softmax_xent (the vit_s16_i1k loss) is implemented")
    if cfg.optax_name != "scale_by_adam":
        raise ConfigError(f"optax_name={cfg.optax_name!r}: only scale_by_adam is implemented")


def config_from_dict(d: dict) -> TrainConfig:
    """Rebuild a TrainConfig from ``to_dict()`` output (e.g. a checkpoint's metadata)."""
    cfg = TrainConfig()

    def walk(prefix, sub):
        for k, v in sub.items():
            if isinstance(v, dict):
                walk(prefix + k + ".", v)
            else:
                set_key(cfg, prefix + k, v)
    walk("", d)
    return cfg
