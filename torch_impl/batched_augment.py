"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.pp.backends.batched`` (see docs/layout in README.md)."""
from torch_impl.pp.backends.batched import *  # noqa: F401,F403
from torch_impl.pp.geometry import projective_tables  # noqa: F401
