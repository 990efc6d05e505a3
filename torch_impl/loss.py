"""Old flat location, kept as a thin re-export so code written against the flat layout keeps importing.

New home: ``torch_impl.optim.objective`` (see docs/layout in README.md)."""
from torch_impl.optim.objective import *  # noqa: F401,F403
