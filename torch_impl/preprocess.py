"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.pp.jpeg``, ``torch_impl.pp.resize``, ``torch_impl.pp.tf_math``, ``torch_impl.pp.geometry``, ``torch_impl.pp.transforms``, ``torch_impl.pp.pipelines`` (see docs/layout in README.md)."""
from torch_impl.pp.jpeg import *  # noqa: F401,F403
from torch_impl.pp.resize import *  # noqa: F401,F403
from torch_impl.pp.tf_math import *  # noqa: F401,F403
from torch_impl.pp.geometry import *  # noqa: F401,F403
from torch_impl.pp.transforms import *  # noqa: F401,F403
from torch_impl.pp.pipelines import *  # noqa: F401,F403
from torch_impl.pp.crop import central_crop  # noqa: F401
