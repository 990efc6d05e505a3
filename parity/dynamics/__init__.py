"""Training-dynamics parity (issue 16): whole runs of big_vision's own train.py vs the torch loop.

Import-light on purpose (no torch, no TF): ``reference.dynamics`` reads the same recipe in a process
that must never import torch, and ``parity.dynamics.data`` needs only numpy + Pillow.

- ``recipe.json``  the one recipe both frameworks translate (versioned).
- ``data``         the deterministic procedural dataset (ImageFolder of JPEGs, sha256-pinned).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECIPE_PATH = Path(__file__).with_name("recipe.json")


class RecipeError(ValueError):
    """A recipe file that is missing, not JSON, or lacks a field; the message names the file and field."""


def load_recipe(path: str | Path | None = None) -> dict:
    """Read a recipe JSON (default: the shipped recipe.json) and check its top-level fields exist."""
    p = Path(path) if path is not None else RECIPE_PATH
    try:
        recipe = json.loads(p.read_text())
    except FileNotFoundError:
        raise RecipeError(f"{p}: no such recipe file (the shipped one is {RECIPE_PATH})") from None
    except json.JSONDecodeError as e:
        raise RecipeError(f"{p}: not valid JSON ({e}); fix the file or use {RECIPE_PATH}") from None
    for key in ("version", "data", "pp", "model", "optimizer", "mixup", "batch_size", "total_steps",
                "eval_every_steps", "seeds"):
        if key not in recipe:
            raise RecipeError(f"{p}: missing field {key!r} (compare with {RECIPE_PATH})")
    return recipe


def recipe_digest(recipe: dict) -> str:
    """sha256 of the recipe's canonical JSON (sorted keys): what a fixture records as 'the recipe it ran'."""
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
