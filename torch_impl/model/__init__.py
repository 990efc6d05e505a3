"""big_vision's ViT (``big_vision/models/vit.py``): the module (vit), its initialisers (init) and the
big_vision <-> torch parameter conversion (convert)."""
from torch_impl.model.vit import (DEFAULTS, LAYERNORM_EPS, OVERRIDES, POOL_TYPES, POSEMB_TYPES, VARIANTS, Attention,
                                  Encoder, EncoderBlock, MAPHead, MlpBlock, ViT, decode_variant, num_params,
                                  posemb_sincos_2d)

__all__ = ["ViT", "VARIANTS", "POOL_TYPES", "POSEMB_TYPES", "DEFAULTS", "OVERRIDES", "LAYERNORM_EPS", "Attention",
           "MlpBlock", "EncoderBlock", "Encoder", "MAPHead", "decode_variant", "posemb_sincos_2d", "num_params"]
