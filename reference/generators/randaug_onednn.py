"""Fixtures for `randaug_onednn`: the ops whose bits depend on TensorFlow's oneDNN mode, generated with it
ON (the parity side pins the mode per family). Same request format and tf.data path as `randaug_ops`."""
from reference.generators.randaug_ops import generate  # noqa: F401
