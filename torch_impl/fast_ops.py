"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.pp.backends.numpy`` (see docs/layout in README.md)."""
from torch_impl.pp.backends.numpy import *  # noqa: F401,F403
from torch_impl.pp.crop import sample_inception_box1  # noqa: F401
