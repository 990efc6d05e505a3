"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.model.convert`` (see docs/layout in README.md)."""
from torch_impl.model.convert import *  # noqa: F401,F403
from torch_impl.model.convert import _entries  # noqa: F401  (used by parity/families/optimizer.py)
