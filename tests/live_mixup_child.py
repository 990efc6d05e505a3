"""Child process of tests/test_dynamics_reference.py::test_live_mixup_draws_are_train_py_s: big_vision's
train.py run as reference.dynamics.launch runs it, with u.get_mixup wrapped (from outside big_vision) to
hand each update's coefficient to the host. Usage: python tests/live_mixup_child.py SEED CONFIG WORKDIR OUT.npz"""
import sys

import numpy as np


def main(seed: int, config: str, workdir: str, out: str) -> None:
    import runpy

    from reference.dynamics import launch
    launch.prepare(seed)
    import jax
    import jax.numpy as jnp

    import big_vision.utils as u
    seen = []
    real = u.get_mixup

    def get_mixup(rng, p):
        # the same split and draw as big_vision's get_mixup, recorded; then big_vision's own function mixes
        _, rng_mixup = jax.random.split(rng)
        a = jax.random.beta(rng_mixup, p, p)
        jax.debug.callback(lambda v: seen.append(float(v)), jnp.maximum(a, 1.0 - a))
        return real(rng, p)
    u.get_mixup = get_mixup
    sys.argv = ["big_vision/train.py", f"--config={config}", f"--workdir={workdir}", "--logtostderr"]
    try:
        runpy.run_module("big_vision.train", run_name="__main__", alter_sys=True)
    finally:
        np.save(out, np.array(seen))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])
