"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.pp.backends.numba`` (see docs/layout in README.md)."""
from torch_impl.pp.backends.numba import *  # noqa: F401,F403
