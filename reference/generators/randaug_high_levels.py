"""Fixtures for `randaug_high_levels`: big_vision's randaug ops at magnitudes above 10 (its configs use
randaug(2, 15) and randaug(2, 20)). Same request format and tf.data path as `randaug_ops`."""
from reference.generators.randaug_ops import generate  # noqa: F401
