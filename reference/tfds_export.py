"""Export a tfds image-classification dataset (``imagenet2012``) to the ImageFolder layout, as files.

    python -m reference.tfds_export --name imagenet2012 --out DIR [--data-dir TFDS_DIR] [--splits train,validation]

Runs in its own process (TensorFlow never shares a process with torch): it reads the tfds records with
``SkipDecoding`` and writes every example's ORIGINAL encoded bytes, unchanged, to
``DIR/<train|val>/<class name>/<file_name>``. The torch side then reads them like any ImageFolder tree,
decoding the same bytes big_vision would decode. Class folder names are tfds' label names (for
imagenet2012 the WordNet ids, whose sorted order is tfds' label order, so ImageFolder's sorted class index
equals the tfds label). The export is resumable (existing files are kept) and finishes by writing
``DIR/EXPORT_DONE.json`` with the per-split counts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SPLIT_DIRS = {"train": "train", "validation": "val"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def export(name: str, out: Path, *, data_dir: str | None = None, splits=("train", "validation"),
           download: bool = False, limit: int | None = None) -> dict:
    import tensorflow as tf
    import tensorflow_datasets as tfds
    tf.config.set_visible_devices([], "GPU")
    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    label = builder.info.features["label"]
    counts = {}
    for split in splits:
        sub = out / SPLIT_DIRS.get(split, split)
        ds = builder.as_dataset(split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
        n = 0
        for ex in ds.as_numpy_iterator():
            fname = ex.get("file_name", b"")
            fname = fname.decode() if isinstance(fname, bytes) else str(fname)
            fname = os.path.basename(fname) or f"{split}_{n:08d}"
            if not fname.lower().endswith(IMAGE_EXTENSIONS):
                fname += ".jpg"
            cdir = sub / label.int2str(int(ex["label"]))
            cdir.mkdir(parents=True, exist_ok=True)
            path = cdir / fname
            if not path.exists():
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(ex["image"])
                os.replace(tmp, path)
            n += 1
            if limit and n >= limit:
                break
            if n % 50_000 == 0:
                print(f"tfds_export: {split}: {n} files", file=sys.stderr, flush=True)
        counts[split] = n
    # the class list: ImageFolder's sorted folders would miss classes absent from a partial export
    (out / "EXPORT_DONE.json").write_text(json.dumps({"name": name, "counts": counts, "num_classes": label.num_classes,
                                                      "classes": list(label.names)}, indent=1))
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m reference.tfds_export", description=__doc__.split("\n")[0])
    p.add_argument("--name", default="imagenet2012")
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", default=None, help="tfds data_dir (default: tfds' own, ~/tensorflow_datasets)")
    p.add_argument("--splits", default="train,validation")
    p.add_argument("--download", action="store_true", help="run download_and_prepare first (imagenet2012 "
                   "needs the manually downloaded ILSVRC tars in <data_dir>/downloads/manual)")
    p.add_argument("--limit", type=int, default=None, help="at most this many examples per split (tests)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        counts = export(a.name, out, data_dir=a.data_dir, splits=tuple(a.splits.split(",")),
                        download=a.download, limit=a.limit)
    except Exception as e:  # noqa: BLE001 - one clear line for the torch side to show
        print(f"tfds_export: cannot export {a.name!r} from tfds (data_dir={a.data_dir}): {type(e).__name__}: {e}",
              file=sys.stderr)
        return 2
    print(f"tfds_export: wrote {counts} into {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
