"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.pp.randaug``, ``torch_impl.pp.transforms`` (see docs/layout in README.md)."""
from torch_impl.pp.randaug import *  # noqa: F401,F403
from torch_impl.pp.transforms import *  # noqa: F401,F403
from torch_impl.pp.crop import sample_inception_box  # noqa: F401
from torch_impl.pp.randaug import CUTOUT_CONST, DEFAULT_REPLACE, TRANSLATE_CONST  # noqa: F401
from torch_impl.pp.tf_math import _blend, _round_half_away  # noqa: F401  (used by parity/families/randaug_ops.py)
