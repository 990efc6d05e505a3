"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.pp.jpeg``, ``torch_impl.pp.backends.numpy``, ``torch_impl.pp.pipelines`` (see docs/layout in README.md)."""
from torch_impl.pp.jpeg import *  # noqa: F401,F403
from torch_impl.pp.backends.numpy import *  # noqa: F401,F403
from torch_impl.pp.pipelines import *  # noqa: F401,F403
from torch_impl.pp.crop import central_crop  # noqa: F401
from torch_impl.pp.resize import resize_bilinear_tf, resize_small  # noqa: F401
from torch_impl.pp.resize import _axis_table  # noqa: F401  (used by parity/families/fast_paths.py)
