"""Rounding-error bounds for tests that compare two float computations of the same real number.

A tolerance must come from what the arithmetic can differ by, not from what one CPU gave (issue 13). The
model is the standard one (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 2-4): every
float op returns the exact result of its operands times (1 + d), |d| <= u, the unit roundoff
(2^-24 for float32, 2^-53 for float64), whatever the CPU, vector width or summation order.

* ``gamma(n)``: n * u / (1 - n * u). Any order of summing n terms (and any blocking a BLAS or a vector
  unit picks) is within ``gamma(n - 1) * sum|x_i|`` of the exact sum; with the products that make the terms,
  ``gamma(n) * sum|a_i * b_i|``.
* ``Bounded``: a value (float64, the computation's float32/64 result) with a bound on its distance from the
  exact-arithmetic result of the same formula on the same inputs, carried through +, -, *, /, sqrt: each op
  adds its own rounding (u * |result|) to the propagated error. Two implementations of one formula then
  differ by at most the sum of their two bounds, whatever the order of their operations.
"""
from __future__ import annotations

import torch

U32 = 2.0 ** -24    # float32 unit roundoff (round to nearest)
U64 = 2.0 ** -53


def gamma(n: int, u: float = U32) -> float:
    if n * u >= 1:
        raise ValueError(f"gamma({n}) undefined for u={u}: n * u >= 1")
    return n * u / (1 - n * u)


def _t(x) -> torch.Tensor:
    return x.detach().double() if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)


class Bounded:
    """``v``: the computed value; ``e``: a bound on |v - exact| (both float64 tensors, broadcastable).

    ``Bounded.exact(x)``: an input both computations share bit for bit (e = 0). ``Bounded.const(c)``: a
    constant each implementation rounds to float32 on its own (e = u * |c|). Ops add u * |result| for
    their own rounding; the bound evaluation itself is float64, 2^29 finer than the float32 being bounded.
    """

    def __init__(self, v, e, u: float = U32):
        self.v, self.e, self.u = _t(v), _t(e), u

    @classmethod
    def exact(cls, x, u: float = U32) -> Bounded:
        v = _t(x)
        return cls(v, torch.zeros_like(v), u)

    @classmethod
    def const(cls, c, u: float = U32) -> Bounded:
        v = _t(c)
        return cls(v, u * v.abs(), u)

    def _wrap(self, x) -> Bounded:
        return x if isinstance(x, Bounded) else Bounded.exact(x, self.u)

    def _round(self, v, e) -> Bounded:
        return Bounded(v, e + self.u * v.abs(), self.u)

    def __add__(self, o):
        o = self._wrap(o)
        return self._round(self.v + o.v, self.e + o.e)

    __radd__ = __add__

    def __sub__(self, o):
        o = self._wrap(o)
        return self._round(self.v - o.v, self.e + o.e)

    def __rsub__(self, o):
        return self._wrap(o) - self

    def __mul__(self, o):
        o = self._wrap(o)
        return self._round(self.v * o.v, self.v.abs() * o.e + o.v.abs() * self.e + self.e * o.e)

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = self._wrap(o)
        q = self.v / o.v
        room = o.v.abs() - o.e      # |a/b - a'/b'| <= (e_a + |a/b| e_b) / (|b| - e_b)
        if bool((room <= 0).any()):
            raise ValueError("Bounded: the divisor's error bound reaches zero; no finite bound")
        return self._round(q, (self.e + q.abs() * o.e) / room)

    def __rtruediv__(self, o):
        return self._wrap(o) / self

    def sqrt(self) -> Bounded:
        # |sqrt(a + d) - sqrt(a)| = |d| / (sqrt(a + d) + sqrt(a)) <= e / (sqrt(a) + sqrt(max(a - e, 0))),
        # and <= sqrt(e) (Hoelder) where that denominator vanishes
        r = self.v.clamp_min(0).sqrt()
        den = r + (self.v - self.e).clamp_min(0).sqrt()
        e = torch.where(den > 0, self.e / den.clamp_min(1e-300), self.e.sqrt()).minimum(self.e.sqrt())
        return self._round(r, e)

    def __pow__(self, n: int) -> Bounded:
        out = self
        for _ in range(n - 1):
            out = out * self
        return out


class AbsTerms:
    """Per parameter, ``sum|term|`` and the term count of the reductions that make its gradient.

    A weight's gradient is a sum over the rows r of the batch (and tokens) of x_r * delta_r (linear
    layers, and a patch-embedding conv whose stride equals its kernel), x_hat_r * delta_r (LayerNorm scale)
    or delta_r (biases). Two computations that reduce the same terms in different groupings (one big batch
    vs micro-batches) are within ``2 * gamma(n) * sum|x_r * delta_r|`` of each other. Recorded during one
    backward pass by wrapping torch.nn.functional's linear, conv2d and layer_norm (so a weight made by
    concatenating parameters, like a fused q/k/v projection, is split back onto its parameters); a
    parameter no recorded op reached is an error, so none goes unchecked.
    """

    _FUNCS = ("linear", "conv2d", "layer_norm")

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self._sum: dict[int, torch.Tensor] = {}
        self._count: dict[int, int] = {}
        self.abs_sum: dict[str, torch.Tensor] = {}
        self.count: dict[str, int] = {}
        self._real = {}

    def __enter__(self) -> AbsTerms:
        F = torch.nn.functional
        self._real = {f: getattr(F, f) for f in self._FUNCS}
        F.linear, F.conv2d, F.layer_norm = self._linear, self._conv2d, self._layer_norm
        return self

    def __exit__(self, *exc):
        for f, fn in self._real.items():
            setattr(torch.nn.functional, f, fn)
        if exc[0] is None:
            names = {id(p): n for n, p in self.model.named_parameters()}
            missing = sorted(n for i, n in names.items() if i not in self._sum)
            if missing:
                raise TypeError(f"AbsTerms: no recorded op reached parameters {missing}")
            self.abs_sum = {names[i]: s for i, s in self._sum.items() if i in names}
            self.count = {names[i]: c for i, c in self._count.items() if i in names}

    @staticmethod
    def _leaves(t) -> list[torch.Tensor]:
        """The parameters a weight/bias tensor is (itself, or a dim-0 torch.cat of them)."""
        if t is None:
            return []
        if t.grad_fn is None:
            return [t] if t.requires_grad else []
        fn = t.grad_fn
        if type(fn).__name__ == "CatBackward0" and getattr(fn, "_saved_dim", None) == 0:
            leaves = [nf.variable for nf, _ in fn.next_functions if type(nf).__name__ == "AccumulateGrad"]
            if len(leaves) == len(fn.next_functions):
                return leaves
        raise TypeError(f"AbsTerms: cannot map a weight made by {type(fn).__name__} back to parameters")

    def _add(self, t, terms: torch.Tensor, rows: int) -> None:
        off = 0
        for p in self._leaves(t):
            part = terms[off:off + p.shape[0]].reshape(p.shape).double()
            off += p.shape[0]
            self._sum[id(p)] = self._sum.get(id(p), 0) + part
            self._count[id(p)] = self._count.get(id(p), 0) + rows

    def _record(self, out, x, weight, bias, *, conv=None, ln=False):
        if not out.requires_grad:
            return out
        x = x.detach()

        def hook(d):
            xx, dd = x, d.detach()
            if conv is not None:
                xx = torch.nn.functional.unfold(xx, conv, stride=conv)   # (B, C*kh*kw, L)
                xx = xx.transpose(1, 2).reshape(-1, xx.shape[1])
                dd = dd.flatten(2).transpose(1, 2).reshape(-1, dd.shape[1])
            else:
                xx, dd = xx.reshape(-1, xx.shape[-1]), dd.reshape(-1, dd.shape[-1])
            rows = xx.shape[0]
            if ln:
                self._add(weight, (xx.abs() * dd.abs()).sum(0), rows)
            elif weight is not None:
                self._add(weight, dd.abs().T @ xx.abs(), rows)
            self._add(bias, dd.abs().sum(0), rows)
        out.register_hook(hook)
        return out

    def _linear(self, x, weight, bias=None):
        return self._record(self._real["linear"](x, weight, bias), x, weight, bias)

    def _conv2d(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        k = tuple(weight.shape[2:])
        stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        pad = (padding, padding) if isinstance(padding, int) else tuple(padding) if not isinstance(padding, str) else padding
        dil = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
        if stride != k or pad not in ((0, 0), "valid") or dil != (1, 1) or groups != 1:
            raise TypeError("AbsTerms: only a patch-embedding conv2d (stride = kernel, no padding) has a term model")
        return self._record(self._real["conv2d"](x, weight, bias, stride, padding, dilation, groups), x, weight,
                            bias, conv=k)

    def _layer_norm(self, x, normalized_shape, weight=None, bias=None, eps=1e-5):
        out = self._real["layer_norm"](x, normalized_shape, weight, bias, eps)
        x_hat = self._real["layer_norm"](x.detach(), normalized_shape, None, None, eps)
        return self._record(out, x_hat, weight, bias, ln=True)
