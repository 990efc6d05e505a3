"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.optim.schedule`` (see docs/layout in README.md)."""
from torch_impl.optim.schedule import *  # noqa: F401,F403
