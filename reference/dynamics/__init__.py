"""Whole-run reference for the training-dynamics parity (issue 16): big_vision's OWN train.py, per seed.

``python -m reference.dynamics --recipe parity/dynamics/recipe.json --data DIR --out DIR --seeds 0-7``

- ``config``   recipe.json -> a big_vision config dict (what configs/vit_s16_i1k.py holds, scaled down).
- ``bv_config`` the ``--config`` file train.py loads (``get_config("<json path>")``).
- ``launch``   the per-seed process: pins and seeds what train.py leaves open, patches
                ``big_vision.utils.sync``, then runs ``big_vision.train`` unchanged as ``__main__``.
- ``metrics``  reads the per-step measurements from train.py's absl log.
- ``run``      seeds in subprocesses (resumable per seed), then the combined fixture.

Nothing here imports torch; the parity side reads only the files this writes.
"""
