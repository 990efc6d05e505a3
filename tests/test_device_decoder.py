"""runtime.device_decode's decoder (issue 15 item 5): TorchCodec when installed, else torchvision's deprecated
decode_jpeg, without leaking its DeprecationWarning; on the CPU both are libjpeg-turbo's accurate decode (= PIL)."""
from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image

from parity import photos
from torch_impl.pp.backends.batched import device_jpeg_decoder


def test_device_decoder_is_named_and_silent_and_decodes_like_pil():
    name, decode = device_jpeg_decoder()
    assert name.startswith(("torchcodec", "torchvision"))
    jpegs = list(photos.imagenet_like_jpegs().values())[:3]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        out = decode([torch.frombuffer(bytearray(j), dtype=torch.uint8) for j in jpegs], torch.device("cpu"))
    for img, j in zip(out, jpegs):
        ref = np.asarray(Image.open(io.BytesIO(j)).convert("RGB"))
        assert torch.equal(img, torch.from_numpy(ref).permute(2, 0, 1))
