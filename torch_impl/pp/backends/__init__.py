"""Faster implementations of ``torch_impl.pp``'s ops that give the same bits: numba (compiled CPU
kernels), numpy (the per-image CPU path; uses numba where enabled) and batched (per-sample ops on a uint8
batch, any device)."""
