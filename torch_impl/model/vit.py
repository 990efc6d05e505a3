"""big_vision's plain ViT (``big_vision/models/vit.py``) in PyTorch, with its initialisation.

What is matched, and how (behaviours of big_vision's flax model, re-implemented here):

* Variants: big_vision's table (width, depth, mlp_dim, heads) for mu, Ti, S, M, B, L, So400m, H, g, g-opt,
  G, G-opt, e; "S/16" sets the patch size. Keyword overrides win over the variant, like big_vision's
  ``Model(variant=..., **kw)``.
* Stem: a patch_size-strided conv ("VALID"), flattened row-major to tokens; the position embedding is added
  BEFORE the [cls] token is prepended (pool_type "tok").
* Position embedding "sincos2d" (MoCo v3 layout, temperature 10000): channels are
  [sin(x*w), cos(x*w), sin(y*w), cos(y*w)] with x the column and y the row index and
  w_i = 1 / 10000**(i / (width/4 - 1)); computed for the actual patch grid, so any image size works.
  "learn": a parameter of shape (1, h*w, width) for the grid of ``image_size``.
* Pre-norm encoder blocks: x + Attn(LN(x)), then x + MLP(LN(x)); LayerNorm eps 1e-6 (flax default, torch's
  is 1e-5); MLP = Dense -> GELU -> Dropout -> Dense with flax's ``nn.gelu``, which is the TANH
  approximation (torchvision's MLPBlock and torch's ``nn.GELU()`` default are exact erf); a final
  LayerNorm ("encoder_norm").
* Attention: q/k/v/out projections with biases, softmax(q k^T / sqrt(head_dim)) v, no attention dropout
  (flax's default rate 0), computed with ``F.scaled_dot_product_attention``.
* Pooling: "gap" (mean over tokens), "tok" ([cls] token; the 2-D map drops it), "0" (first token, no
  [cls]), "map" (multihead attention pooling with a learned probe, then + MLP(LN(.))), "none" (no pooling:
  the head is applied to every token).
* rep_size: a "pre_logits" Dense + tanh (True: width units); head: a Dense, zero-initialised by default.
* Dropout (rate ``dropout``) after the embedding, after attention, inside and after the MLP, active in
  ``train()`` mode (big_vision's ``train=True``).

``forward(images)`` takes float images (N, 3, H, W) (big_vision feeds NHWC in [-1, 1] after
``value_range(-1, 1)``) and returns ``(logits, out)``; ``out`` holds big_vision's intermediates under its
names, nested dicts flattened with '/': "stem" (N, h, w, C), "with_posemb" (N, h*w, C),
"encoder/blockNN/{sa,+sa,mlp,+mlp}", "encoder/pre_ln", "encoded", "head_input", "pre_logits", "logits",
and with ``outputs_2d=True`` "pre_logits_2d" / "logits_2d" (big_vision always computes these; jit drops
them when unused, eager PyTorch would not, so here they are opt-in). Activations stay channels-last like
big_vision's, so an intermediate compares to the reference without transposes.

Initialisation (``reset_parameters(generator)``) draws from the same distributions as flax's ``model.init``
(see torch_impl/model/init.py for where PyTorch's defaults differ).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from torch_impl.model import init as I

LAYERNORM_EPS = 1e-6  # flax.linen.LayerNorm default

# big_vision's decode_variant table (Table 2 of arXiv:2106.04560 plus later additions):
# name -> (width, depth, mlp_dim, num_heads)
VARIANTS: dict[str, tuple[int, int, int, int]] = {
    "mu": (32, 1, 128, 2),
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "M": (512, 12, 2048, 8),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    "So400m": (1152, 27, 4304, 16),
    "H": (1280, 32, 5120, 16),
    "g": (1408, 40, 6144, 16),
    "g-opt": (1536, 40, 6144, 16),
    "G": (1664, 48, 8192, 16),
    "G-opt": (1536, 48, 8192, 16),
    "e": (1792, 56, 15360, 16),
}
# big_vision's _Model defaults, used when variant is None.
DEFAULTS = {"width": 768, "depth": 12, "mlp_dim": None, "num_heads": 12, "patch_size": (16, 16)}
POOL_TYPES = ("gap", "tok", "map", "0", "none")
POSEMB_TYPES = ("sincos2d", "learn")
OVERRIDES = ("width", "depth", "mlp_dim", "num_heads", "patch_size", "image_size")


def _pair(v) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"expected an int or a pair of ints, got {v!r}")
    return t


def decode_variant(variant: str | None) -> dict:
    """"S" or "S/16" -> {"width", "depth", "mlp_dim", "num_heads"[, "patch_size"]}, as big_vision decodes it."""
    if variant is None:
        return {}
    name, _, patch = variant.partition("/")
    if name not in VARIANTS:
        raise ValueError(f"unknown ViT variant {variant!r}: the name before '/' must be one of "
                         f"{', '.join(VARIANTS)} (e.g. 'S/16')")
    width, depth, mlp_dim, heads = VARIANTS[name]
    cfg = {"width": width, "depth": depth, "mlp_dim": mlp_dim, "num_heads": heads}
    if patch:
        if not patch.isdigit():
            raise ValueError(f"ViT variant {variant!r}: the patch size after '/' must be an integer, e.g. 'S/16'")
        cfg["patch_size"] = (int(patch), int(patch))
    return cfg


def posemb_sincos_2d(h: int, w: int, width: int, *, temperature: float = 10_000.0,
                     dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """MoCo v3 2-D sin-cos position embedding as big_vision computes it: (1, h*w, width), float32 math.

    Tokens are in row-major order (y = row, x = column); channels are the four blocks
    [sin(x w), cos(x w), sin(y w), cos(y w)], w_i = temperature ** -(i / (width/4 - 1)), i < width/4.
    """
    if width % 4:
        raise ValueError(f"sincos2d position embedding needs width divisible by 4, got {width}")
    if width < 8:
        raise ValueError(f"sincos2d position embedding needs width >= 8 (width/4 - 1 > 0), got {width}")
    n = width // 4
    y, x = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    omega = torch.arange(n, device=device, dtype=torch.float32) / (n - 1)
    omega = 1.0 / (temperature ** omega)
    y = y.reshape(-1, 1).to(torch.float32) * omega[None, :]
    x = x.reshape(-1, 1).to(torch.float32) * omega[None, :]
    pe = torch.cat([torch.sin(x), torch.cos(x), torch.sin(y), torch.cos(y)], dim=1)
    return pe[None].to(dtype)


class Attention(nn.Module):
    """flax ``nn.MultiHeadDotProductAttention`` (qkv_features = out_features = width, biases, no dropout).

    q/k/v/out are separate Linear layers, as flax keeps separate DenseGeneral kernels (query, key, value:
    (width, heads, head_dim); out: (heads, head_dim, width)). Self-attention fuses the three projections into
    one matmul. Heads are split as flax does: feature index = head * head_dim + d.
    """

    def __init__(self, width: int, num_heads: int):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}")
        self.width, self.num_heads, self.head_dim = width, num_heads, width // num_heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        n, length, _ = t.shape
        return t.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, inputs_q: torch.Tensor, inputs_kv: torch.Tensor | None = None) -> torch.Tensor:
        if inputs_kv is None:  # self-attention: one matmul for q, k, v
            w = torch.cat([self.query.weight, self.key.weight, self.value.weight])
            b = torch.cat([self.query.bias, self.key.bias, self.value.bias])
            q, k, v = F.linear(inputs_q, w, b).chunk(3, dim=-1)
        else:
            q, k, v = self.query(inputs_q), self.key(inputs_kv), self.value(inputs_kv)
        n, lq, _ = q.shape
        o = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v))
        return self.out(o.transpose(1, 2).reshape(n, lq, self.width))

    @torch.no_grad()
    def reset_parameters_big_vision(self, generator: torch.Generator | None = None) -> None:
        # big_vision passes kernel_init=xavier_uniform; flax's DenseGeneral evaluates it on the kernel
        # flattened to 2-D: (width, heads*head_dim) for q/k/v, (heads*head_dim, width) for out -> each is a
        # square width x width matrix here, bound sqrt(6 / (2 width)). Biases: flax's zeros.
        for lin in (self.query, self.key, self.value, self.out):
            I.xavier_uniform_(lin.weight, lin.in_features, lin.out_features, generator=generator)
            I.zeros_(lin.bias)


class MlpBlock(nn.Module):
    """Dense(mlp_dim) -> GELU (tanh approximation, flax's nn.gelu) -> Dropout -> Dense(width)."""

    def __init__(self, width: int, mlp_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        mlp_dim = mlp_dim or 4 * width
        self.fc1 = nn.Linear(width, mlp_dim)
        # flax nn.gelu(approximate=True) is the default in big_vision; exact erf would be nn.GELU().
        self.act = nn.GELU(approximate="tanh")
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(mlp_dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))

    @torch.no_grad()
    def reset_parameters_big_vision(self, generator: torch.Generator | None = None) -> None:
        # big_vision's MlpBlock: kernel_init=xavier_uniform, bias_init=normal(stddev=1e-6).
        for lin in (self.fc1, self.fc2):
            I.xavier_uniform_(lin.weight, lin.in_features, lin.out_features, generator=generator)
            I.normal_(lin.bias, 1e-6, generator=generator)


def _layernorm(width: int) -> nn.LayerNorm:
    return nn.LayerNorm(width, eps=LAYERNORM_EPS)


class EncoderBlock(nn.Module):
    """Pre-norm block; returns (x, {"sa", "+sa", "mlp", "+mlp"}) like big_vision's Encoder1DBlock."""

    def __init__(self, width: int, mlp_dim: int | None, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = _layernorm(width)
        self.attn = Attention(width, num_heads)
        self.norm2 = _layernorm(width)
        self.mlp = MlpBlock(width, mlp_dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = {}
        y = self.norm1(x)
        y = out["sa"] = self.attn(y)
        x = out["+sa"] = x + self.drop(y)
        y = self.norm2(x)
        y = out["mlp"] = self.mlp(y)
        x = out["+mlp"] = x + self.drop(y)
        return x, out


class Encoder(nn.Module):
    """``depth`` blocks then the final LayerNorm ("Transformer" / "encoder_norm" in big_vision)."""

    def __init__(self, depth: int, width: int, mlp_dim: int | None, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.blocks = nn.ModuleList(EncoderBlock(width, mlp_dim, num_heads, dropout) for _ in range(depth))
        self.norm = _layernorm(width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = {}
        for i, block in enumerate(self.blocks):
            x, block_out = block(x)
            for k, v in block_out.items():
                out[f"block{i:02d}/{k}"] = v
        out["pre_ln"] = x  # big_vision's alias for the last block's output
        return self.norm(x), out


class MAPHead(nn.Module):
    """Multihead attention pooling: a learned probe attends over the tokens, then probe + MLP(LN(probe))."""

    def __init__(self, width: int, mlp_dim: int | None, num_heads: int):
        super().__init__()
        self.probe = nn.Parameter(torch.zeros(1, 1, width))
        self.attn = Attention(width, num_heads)
        self.norm = _layernorm(width)
        self.mlp = MlpBlock(width, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probe = self.probe.to(x.dtype).expand(x.shape[0], -1, -1)
        x = self.attn(probe, x)
        x = x + self.mlp(self.norm(x))
        return x[:, 0]

    @torch.no_grad()
    def reset_parameters_big_vision(self, generator: torch.Generator | None = None) -> None:
        # big_vision: probe ~ xavier_uniform over shape (1, 1, width): flax's fans are fan_in = 1,
        # fan_out = width (receptive field 1), so the bound is sqrt(6 / (1 + width)).
        I.xavier_uniform_(self.probe, 1, self.probe.shape[-1], generator=generator)
        self.attn.reset_parameters_big_vision(generator)
        I.ones_(self.norm.weight)
        I.zeros_(self.norm.bias)
        self.mlp.reset_parameters_big_vision(generator)


class ViT(nn.Module):
    """big_vision's ViT. See the module docstring for what is matched.

    Args:
      num_classes: head size; 0 or None: no head (the "logits" returned are the pre-logits).
      variant: e.g. "S/16", "B/32", "mu"; None: big_vision's defaults (B-sized, patch 16).
      pool_type: "gap", "tok", "map", "0" or "none".
      posemb: "sincos2d" or "learn".
      rep_size: False, True (= width) or an int: pre_logits Dense + tanh.
      head_zeroinit: zero-initialise the head kernel (big_vision's default), else lecun_normal.
      dropout: dropout rate (train mode only).
      generator: torch.Generator or int seed for the initialisation (None: torch's global RNG).
      **overrides: width, depth, mlp_dim, num_heads, patch_size (int or pair) override the variant;
        image_size (int or pair, default 224) sets the patch grid of a learned position embedding.
    """

    def __init__(self, num_classes: int | None, *, variant: str | None = "S/16", pool_type: str = "gap",
                 posemb: str = "sincos2d", rep_size: bool | int = False, head_zeroinit: bool = True,
                 dropout: float = 0.0, generator: torch.Generator | int | None = None, **overrides):
        super().__init__()
        unknown = sorted(set(overrides) - set(OVERRIDES))
        if unknown:
            raise TypeError(f"ViT: unknown keyword(s) {unknown}; overrides are {', '.join(OVERRIDES)}")
        if pool_type not in POOL_TYPES:
            raise ValueError(f"ViT: unknown pool_type {pool_type!r}; big_vision supports {', '.join(POOL_TYPES)}")
        if posemb not in POSEMB_TYPES:
            raise ValueError(f"ViT: unknown posemb {posemb!r}; big_vision supports {', '.join(POSEMB_TYPES)}")
        cfg = {**DEFAULTS, **decode_variant(variant), **overrides}
        self.variant = variant
        self.num_classes = num_classes or 0
        self.width, self.depth, self.num_heads = int(cfg["width"]), int(cfg["depth"]), int(cfg["num_heads"])
        self.mlp_dim = int(cfg["mlp_dim"]) if cfg["mlp_dim"] else 4 * self.width
        self.patch_size = _pair(cfg["patch_size"])
        self.image_size = _pair(cfg.get("image_size", 224))
        self.pool_type, self.posemb_type = pool_type, posemb
        self.rep_size = (self.width if rep_size is True else int(rep_size)) if rep_size else 0
        self.head_zeroinit = head_zeroinit
        self.dropout_rate = dropout
        if posemb == "sincos2d":  # validate early: big_vision asserts width % 4 == 0
            posemb_sincos_2d(1, 1, self.width)

        w = self.width
        self.embedding = nn.Conv2d(3, w, kernel_size=self.patch_size, stride=self.patch_size)
        self.grid = (self.image_size[0] // self.patch_size[0], self.image_size[1] // self.patch_size[1])
        if posemb == "learn":
            self.pos_embedding = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], w))
        else:
            self.register_parameter("pos_embedding", None)
        self.cls = nn.Parameter(torch.zeros(1, 1, w)) if pool_type == "tok" else None
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(self.depth, w, self.mlp_dim, self.num_heads, dropout)
        self.map_head = MAPHead(w, self.mlp_dim, self.num_heads) if pool_type == "map" else None
        self.pre_logits = nn.Linear(w, self.rep_size) if self.rep_size else None
        self.head = nn.Linear(self.rep_size or w, self.num_classes) if self.num_classes else None
        self._sincos_cache: dict = {}
        self.reset_parameters(generator)

    # ---- initialisation ------------------------------------------------------------------------
    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | int | None = None) -> None:
        """Re-draw every parameter from big_vision's (flax's) init distributions.

        ``generator``: a torch.Generator, an int seed (a fresh CPU generator seeded with it), or None
        (torch's global RNG). A CPU generator gives the same values whatever device the model is on."""
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        w = self.width
        ph, pw = self.patch_size
        # nn.Conv default kernel_init: lecun_normal (truncated normal WITH variance correction),
        # fan_in = patch_h * patch_w * 3 (flax HWIO kernel); bias zeros. torch's Conv2d default would be
        # kaiming-uniform for weight and bias.
        I.lecun_normal_(self.embedding.weight, ph * pw * 3, generator=generator)
        I.zeros_(self.embedding.bias)
        if self.pos_embedding is not None:  # big_vision: normal(stddev=1/sqrt(width))
            I.normal_(self.pos_embedding, 1.0 / math.sqrt(w), generator=generator)
        if self.cls is not None:  # big_vision: zeros
            I.zeros_(self.cls)
        for block in self.encoder.blocks:
            for ln in (block.norm1, block.norm2):
                I.ones_(ln.weight)
                I.zeros_(ln.bias)
            block.attn.reset_parameters_big_vision(generator)
            block.mlp.reset_parameters_big_vision(generator)
        I.ones_(self.encoder.norm.weight)
        I.zeros_(self.encoder.norm.bias)
        if self.map_head is not None:
            self.map_head.reset_parameters_big_vision(generator)
        if self.pre_logits is not None:  # plain nn.Dense: lecun_normal kernel, zeros bias
            I.lecun_normal_(self.pre_logits.weight, self.pre_logits.in_features, generator=generator)
            I.zeros_(self.pre_logits.bias)
        if self.head is not None:  # zeros if head_zeroinit else nn.Dense's lecun_normal; bias zeros
            if self.head_zeroinit:
                I.zeros_(self.head.weight)
            else:
                I.lecun_normal_(self.head.weight, self.head.in_features, generator=generator)
            I.zeros_(self.head.bias)

    # ---- forward -------------------------------------------------------------------------------
    def _posemb(self, h: int, w: int, x: torch.Tensor) -> torch.Tensor:
        if self.pos_embedding is not None:
            if (h, w) != self.grid:
                raise ValueError(
                    f"ViT: learned position embedding is for a {self.grid[0]}x{self.grid[1]} patch grid "
                    f"(image_size={self.image_size}), but the input gives {h}x{w}; build the model with "
                    f"image_size=({h * self.patch_size[0]}, {w * self.patch_size[1]}) or resize the images")
            return self.pos_embedding.to(x.dtype)
        key = (h, w, x.device, x.dtype)
        pe = self._sincos_cache.get(key)
        if pe is None:
            pe = self._sincos_cache[key] = posemb_sincos_2d(h, w, self.width, dtype=x.dtype, device=x.device)
        return pe

    def forward(self, images: torch.Tensor, *, outputs_2d: bool = False
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ViT expects images of shape (N, 3, H, W), got {tuple(images.shape)}")
        out: dict[str, torch.Tensor] = {}
        x = self.embedding(images).permute(0, 2, 3, 1)  # NHWC, like big_vision's stem
        out["stem"] = x
        n, h, w, c = x.shape
        x = x.reshape(n, h * w, c)
        # position embedding first, then the [cls] token (big_vision's current order)
        x = out["with_posemb"] = x + self._posemb(h, w, x)
        if self.cls is not None:
            x = torch.cat([self.cls.to(x.dtype).expand(n, -1, -1), x], dim=1)
        x = self.dropout(x)
        x, enc_out = self.encoder(x)
        out.update({f"encoder/{k}": v for k, v in enc_out.items()})
        encoded = out["encoded"] = x

        if self.pool_type == "map":
            x = out["head_input"] = self.map_head(x)
        elif self.pool_type == "gap":
            x = out["head_input"] = x.mean(dim=1)
        elif self.pool_type == "0":
            x = out["head_input"] = x[:, 0]
        elif self.pool_type == "tok":
            x = out["head_input"] = x[:, 0]
            encoded = encoded[:, 1:]
        # "none": no pooling, the head sees every token

        x_2d = encoded.reshape(n, h, w, -1) if outputs_2d else None
        if self.pre_logits is not None:
            x = torch.tanh(self.pre_logits(x))
            if outputs_2d:
                x_2d = torch.tanh(self.pre_logits(x_2d))
        if outputs_2d:
            out["pre_logits_2d"] = x_2d
        out["pre_logits"] = x
        if self.head is not None:
            x = out["logits"] = self.head(x)
            if outputs_2d:
                out["logits_2d"] = self.head(x_2d)
        return x, out

    def extra_repr(self) -> str:
        return (f"variant={self.variant!r}, width={self.width}, depth={self.depth}, heads={self.num_heads}, "
                f"mlp_dim={self.mlp_dim}, patch={self.patch_size}, pool={self.pool_type!r}, "
                f"posemb={self.posemb_type!r}, rep_size={self.rep_size}, classes={self.num_classes}")


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__: Sequence[str] = ("ViT", "VARIANTS", "decode_variant", "posemb_sincos_2d", "num_params")
