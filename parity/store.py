"""The fixture store: recorded big_vision outputs (.npz) plus a manifest with provenance and sha256.

Layout: ``<root>/manifest.json`` and ``<root>/<family>/<name>.npz``. Each manifest entry records the
file's sha256 and size, its family, the generator arguments, the big_vision commit and the library
versions that produced it, and the date. Every read goes through :meth:`FixtureStore.load`, which checks
the file against the manifest first, so a missing, truncated or altered fixture is a :class:`FixtureError`
that names the file and the command regenerating it, never a numpy traceback.

The manifest also *declares* what each family must produce (``"declared": {family: {"files": [...],
"checks": [...], "controls": [...], "internal": [...]}}``), written when the family is generated (or by
``parity fixtures census``). The runner fails every declared check that is not produced, so an empty store,
a removed manifest entry, a damaged file or a skipped case is a counted failure, never a smaller total.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


class FixtureError(RuntimeError):
    """A recorded fixture is missing, corrupt or does not match the manifest."""


def default_root() -> Path:
    """``$PARITY_FIXTURES`` if set, else the ``fixtures/`` folder of this checkout."""
    env = os.environ.get("PARITY_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "fixtures"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def regenerate_hint(family: str) -> str:
    return (f"regenerate it with `BIG_VISION_DIR=/path/to/big_vision parity fixtures generate --family {family}` "
            f"(or restore it with `git checkout -- fixtures/`)")


def encode_spec(spec: Mapping) -> np.ndarray:
    """JSON metadata stored inside an .npz as a 0-d unicode array (no pickle needed to read it back)."""
    return np.array(json.dumps(spec, sort_keys=True))


def decode_spec(arr: np.ndarray) -> dict:
    return json.loads(str(arr[()]))


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write compressed, deterministic .npz bytes (zip entries carry a fixed timestamp), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            arr = np.asarray(arrays[key])
            if arr.dtype == object:
                raise TypeError(f"{path}: array {key!r} has dtype object; store numbers or strings only")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def read_npz(path: Path, *, what: str = "") -> dict[str, np.ndarray]:
    """Load every array of an .npz eagerly; any decoding problem becomes a FixtureError naming the file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FixtureError(f"{path}: file not found. {what}".strip()) from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as e:
        raise FixtureError(f"{path}: not a readable .npz ({type(e).__name__}: {e}). {what}".strip()) from None


class FixtureStore:
    """Read (and, for the generator, write) one fixture directory."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    # ---- manifest -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict:
        path = self.manifest_path
        if not path.exists():
            raise FixtureError(
                f"{path}: manifest not found. The fixture store at {self.root} is empty or moved; "
                f"restore it with `git checkout -- fixtures/` or regenerate every family with "
                f"`BIG_VISION_DIR=/path/to/big_vision parity fixtures generate`.")
        stat = path.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        if getattr(self, "_manifest_cache", (None,))[0] == key:
            return self._manifest_cache[1]
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise FixtureError(f"{path}: manifest is not valid JSON ({e}); restore it with "
                               f"`git checkout -- fixtures/manifest.json`.") from None
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise FixtureError(f"{path}: manifest lacks the 'files' table; restore it with "
                               f"`git checkout -- fixtures/manifest.json`.")
        self._manifest_cache = (key, data)
        return data

    def entries(self, family: str | None = None) -> dict[str, dict]:
        """Manifest entries (of one family); a missing or unreadable manifest is a FixtureError."""
        files = self.manifest()["files"]
        return {p: e for p, e in sorted(files.items()) if family is None or e.get("family") == family}

    def declared(self, family: str) -> dict | None:
        """What ``family`` must produce (files, checks, controls, internal), or None if undeclared."""
        d = self.manifest().get("declared", {}).get(family)
        return None if d is None else {k: list(d.get(k, [])) for k in ("files", "checks", "controls", "internal")}

    def damaged(self) -> dict[str, str]:
        """{relpath: problem} for every manifest entry whose file is missing or altered."""
        out = {}
        for rel in self.entries():
            try:
                self.check_file(rel)
            except FixtureError as e:
                out[rel] = str(e)
        return out

    def without(self, excluded) -> FixtureStore:
        """A view of this store that does not list ``excluded`` files (damaged ones): families then build
        their checks from the healthy files, and the runner counts the rest as failures."""
        return _FilteredStore(self.root, frozenset(excluded))

    def families(self) -> list[str]:
        return sorted({e["family"] for e in self.entries().values()})

    def files(self, family: str) -> list[str]:
        """Relative paths of a family's recorded files, in a stable order."""
        return list(self.entries(family))

    # ---- reading --------------------------------------------------------------------------------
    def check_file(self, relpath: str) -> dict:
        """Return the manifest entry after checking the file exists and matches size and sha256."""
        entries = self.entries()
        entry = entries.get(relpath)
        path = self.root / relpath
        if entry is None:
            family = relpath.split("/", 1)[0]
            raise FixtureError(f"{path}: no manifest entry for this fixture; {regenerate_hint(family)}.")
        hint = regenerate_hint(entry["family"])
        if not path.exists():
            raise FixtureError(f"{path}: fixture file is missing; {hint}.")
        size = path.stat().st_size
        if size != entry["bytes"]:
            raise FixtureError(f"{path}: fixture file has {size} bytes, the manifest records {entry['bytes']} "
                               f"(truncated or altered); {hint}.")
        digest = sha256_file(path)
        if digest != entry["sha256"]:
            raise FixtureError(f"{path}: sha256 {digest[:12]}... does not match the manifest's "
                               f"{entry['sha256'][:12]}... (the file was altered); {hint}.")
        return entry

    def load(self, relpath: str) -> dict[str, np.ndarray]:
        entry = self.check_file(relpath)
        return read_npz(self.root / relpath, what=regenerate_hint(entry["family"]) + ".")

    def verify(self) -> list[str]:
        """Check every manifest entry; return one message per problem (empty list: all good). A missing
        manifest, an empty one, or a family whose declared files lack entries is a problem too."""
        try:
            entries = self.entries()
        except FixtureError as e:
            return [str(e)]
        if not entries:
            return [f"{self.manifest_path}: the manifest lists no fixtures (an empty store checks nothing); "
                    f"restore it with `git checkout -- fixtures/` or run `parity fixtures generate`."]
        problems = []
        for family, decl in sorted(self.manifest().get("declared", {}).items()):
            for rel in decl.get("files", []):
                if rel not in entries:
                    problems.append(f"{self.root / rel}: declared by family {family} but has no manifest entry; "
                                    f"{regenerate_hint(family)}.")
        for relpath in entries:
            try:
                self.check_file(relpath)
            except FixtureError as e:
                problems.append(str(e))
        if self.root.exists():
            listed = set(entries)
            for p in sorted(self.root.rglob("*.npz")):
                rel = p.relative_to(self.root).as_posix()
                if rel not in listed:
                    problems.append(f"{p}: not in the manifest (stray file); delete it or regenerate its family.")
        return problems

    # ---- writing (used by `parity fixtures generate`) -------------------------------------------
    @contextlib.contextmanager
    def _locked_manifest(self) -> Iterator[dict]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / (MANIFEST + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = (json.loads(json.dumps(self.manifest())) if self.manifest_path.exists()
                    else {"schema": SCHEMA_VERSION, "files": {}})
            yield data
            tmp = self.manifest_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.manifest_path)

    def write_family(self, family: str, files: Mapping[str, Mapping[str, np.ndarray]], *,
                     provenance: Mapping, generator_args: Mapping[str, Mapping]) -> list[str]:
        """Replace a family's files: write each ``<family>/<name>.npz`` and its manifest entry.

        ``provenance``: big_vision commit, library versions (from the reference process).
        ``generator_args``: per file name, the arguments the generator was given.
        """
        date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        written = []
        with self._locked_manifest() as data:
            for old in [p for p, e in data["files"].items() if e.get("family") == family]:
                del data["files"][old]
                (self.root / old).unlink(missing_ok=True)
            for name, arrays in sorted(files.items()):
                rel = f"{family}/{name}.npz"
                path = self.root / rel
                save_npz(path, arrays)
                data["files"][rel] = {
                    "family": family,
                    "sha256": sha256_file(path),
                    "bytes": path.stat().st_size,
                    "generator": {"family": family, "args": dict(generator_args.get(name, {}))},
                    "big_vision_commit": provenance.get("big_vision_commit", "unknown"),
                    "big_vision_source_sha256": provenance.get("big_vision_source_sha256", "unknown"),
                    "versions": dict(provenance.get("versions", {})),
                    # TF's oneDNN mode and the CPU the reference ran on (docs/portability.md)
                    "onednn": dict(provenance.get("onednn", {"mode": "unknown"})),
                    "cpu": dict(provenance.get("cpu", {"model": "unknown"})),
                    "date": date,
                }
                written.append(rel)
            decl = data.setdefault("declared", {}).setdefault(family, {})
            decl["files"] = sorted(written)
        return written

    def write_declared(self, family: str, *, checks: list[str], controls: list[str], internal: list[str]) -> None:
        """Record the check ids (case names) ``family`` must produce from its recorded files."""
        with self._locked_manifest() as data:
            decl = data.setdefault("declared", {}).setdefault(family, {})
            decl.setdefault("files", sorted(p for p, e in data["files"].items() if e.get("family") == family))
            decl.update(checks=sorted(checks), controls=sorted(controls), internal=sorted(internal))


class _FilteredStore(FixtureStore):
    def __init__(self, root, excluded: frozenset):
        super().__init__(root)
        self.excluded = excluded

    def entries(self, family: str | None = None) -> dict[str, dict]:
        return {p: e for p, e in super().entries(family).items() if p not in self.excluded}
