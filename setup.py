"""Build step for the one C extension (everything else is in pyproject.toml).

``torch_impl.pp._tf_jpeg`` reproduces TensorFlow's JPEG decode, including the crop-window decode
(``tf.image.decode_and_crop_jpeg``) that big_vision's training op uses, on libjpeg-turbo's libjpeg API. It
compiles against libjpeg-turbo's public headers (csrc/tf_jpeg/include) and links no library: at run time it
loads the libjpeg-turbo that the ``imagecodecs`` wheel bundles. ``optional=True``: without a C compiler the
install still succeeds and the pipelines fall back to decode-then-crop, with a warning (see
torch_impl/pp/tf_jpeg.py).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "torch_impl.pp._tf_jpeg", ["csrc/tf_jpeg/_tf_jpeg.c"], include_dirs=["csrc/tf_jpeg/include"],
    libraries=["dl", "m"],
    # -ffp-contract=off: the resize is TF's float32 arithmetic bit for bit only if a * b + c stays two roundings
    # (GCC's default for C contracts it into an FMA where the target has one); no -ffast-math for the same reason.
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-fast-math"], optional=True)])
