"""The JAX/TF side: drives big_vision itself to produce reference outputs.

Never imports torch (tests/test_boundary.py proves it). Always runs in its own process
(`python -m reference ...`): in one process, importing tensorflow before torchvision segfaults, and the GPU
machines have no TensorFlow, so results cross the boundary only as .npz files.
"""
