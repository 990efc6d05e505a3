"""Our own stand-in for the dead ``tensorflow_addons.image`` module, which big_vision's randaug imports.

big_vision's ``pp/autoaugment.py`` calls ``tensorflow_addons.image.rotate``, ``.translate`` and
``.transform``. tensorflow-addons no longer installs on current TensorFlow, so we provide the same three
functions on top of ``tf.raw_ops.ImageProjectiveTransformV3`` with tfa's defaults: nearest interpolation,
constant fill with 0, rotation about the image centre (counter-clockwise for a positive angle in the
usual y-down image coordinates, as tfa documents it).

A projective transform is 8 numbers ``[a0, a1, a2, b0, b1, b2, c0, c1]`` that map an *output* pixel
(x, y) to the *input* location ``((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k)`` with
``k = c0 x + c1 y + 1``.
"""
from __future__ import annotations

import sys
import types

import tensorflow as tf


def _as_batch(images):
    """Accept (H, W), (H, W, C) or (N, H, W, C); return a 4-D tensor and a function restoring the rank."""
    images = tf.convert_to_tensor(images)
    rank = images.shape.rank
    if rank == 2:
        return images[None, :, :, None], lambda x: x[0, :, :, 0]
    if rank == 3:
        return images[None], lambda x: x[0]
    if rank == 4:
        return images, lambda x: x
    raise ValueError(f"images must have rank 2, 3 or 4, got shape {images.shape}")


def transform(images, transforms, interpolation="nearest", fill_mode="constant", output_shape=None,
              name=None, fill_value=0.0):
    del name
    batch, restore = _as_batch(images)
    transforms = tf.convert_to_tensor(transforms, dtype=tf.float32)
    if transforms.shape.rank == 1:
        transforms = transforms[None]
    n = tf.shape(batch)[0]
    transforms = tf.broadcast_to(transforms, tf.stack([n, 8]))
    if output_shape is None:
        output_shape = tf.shape(batch)[1:3]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=batch,
        transforms=transforms,
        output_shape=tf.convert_to_tensor(output_shape, dtype=tf.int32),
        fill_value=tf.convert_to_tensor(fill_value, dtype=tf.float32),
        interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper(),
    )
    return restore(out)


def translations_to_projective_transforms(translations):
    """[dx, dy] moves content right/down by (dx, dy): output (x, y) reads input (x - dx, y - dy)."""
    t = tf.convert_to_tensor(translations, dtype=tf.float32)
    if t.shape.rank == 1:
        t = t[None]
    n = tf.shape(t)[0]
    one, zero = tf.ones([n], tf.float32), tf.zeros([n], tf.float32)
    return tf.stack([one, zero, -t[:, 0], zero, one, -t[:, 1], zero, zero], axis=1)


def angles_to_projective_transforms(angles, image_height, image_width):
    """Rotation about the centre ((w-1)/2, (h-1)/2) by ``angles`` radians."""
    a = tf.convert_to_tensor(angles, dtype=tf.float32)
    if a.shape.rank == 0:
        a = a[None]
    h = tf.cast(image_height, tf.float32) - 1.0
    w = tf.cast(image_width, tf.float32) - 1.0
    cos, sin = tf.cos(a), tf.sin(a)
    # Output (x, y) reads the input at R(-angle) applied about the centre; the offsets keep the centre fixed.
    x_offset = (w - (cos * w - sin * h)) / 2.0
    y_offset = (h - (sin * w + cos * h)) / 2.0
    zero = tf.zeros_like(a)
    return tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zero, zero], axis=1)


def translate(images, translations, interpolation="nearest", fill_mode="constant", name=None, fill_value=0.0):
    del name
    return transform(images, translations_to_projective_transforms(translations), interpolation=interpolation,
                     fill_mode=fill_mode, fill_value=fill_value)


def rotate(images, angles, interpolation="nearest", fill_mode="constant", name=None, fill_value=0.0):
    del name
    batch, restore = _as_batch(images)
    shape = tf.shape(batch)
    t = angles_to_projective_transforms(angles, shape[1], shape[2])
    return restore(transform(batch, t, interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value))


def install() -> types.ModuleType:
    """Register ``tensorflow_addons`` and ``tensorflow_addons.image`` in sys.modules (idempotent)."""
    if "tensorflow_addons.image" in sys.modules:
        return sys.modules["tensorflow_addons.image"]
    image = types.ModuleType("tensorflow_addons.image")
    image.__doc__ = "vit-parity's shim for tensorflow_addons.image (see reference/tfa_shim.py)."
    for fn in (transform, translate, rotate, angles_to_projective_transforms, translations_to_projective_transforms):
        setattr(image, fn.__name__, fn)
    pkg = types.ModuleType("tensorflow_addons")
    pkg.__path__ = []  # a package, so `from tensorflow_addons import image` works
    pkg.image = image
    sys.modules["tensorflow_addons"] = pkg
    sys.modules["tensorflow_addons.image"] = image
    return image
