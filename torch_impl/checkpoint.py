"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.train.checkpoint`` (see docs/layout in README.md)."""
from torch_impl.train.checkpoint import *  # noqa: F401,F403
