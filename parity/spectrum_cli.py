"""`parity spectrum`: RandAugment(2, M) pixel-value spectra of ours, big_vision (recorded) and torchvision on the
B&W grid, as PNGs and spectrum.json, with the randaug_spectrum family's bar as verdict (library:
parity/spectrum.py, plots: parity/spectrum_plots.py)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from parity import spectrum as S
from parity.families import randaug_spectrum as fam
from parity.spectrum_plots import render
from parity.store import FixtureError, FixtureStore


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="draws per torch implementation (default 1000)")
    parser.add_argument("--magnitude", type=int, action="append",
                        help="RandAugment magnitude M (repeatable; default: every magnitude recorded)")
    parser.add_argument("--out", required=True, help="folder for the PNGs and spectrum.json")
    parser.add_argument("--fixtures", default=None, help="fixture store with the big_vision spectra "
                        "(default: the repo's fixtures/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the torch runs (default 0)")


def main(args) -> int:
    if args.n < 2:
        print(f"parity spectrum: --n must be >= 2, got {args.n}", file=sys.stderr)
        return 2
    store = FixtureStore(args.fixtures)
    try:
        recorded = fam.recorded(store)
    except FixtureError as e:
        print(f"parity spectrum: {e}", file=sys.stderr)
        return 2
    if not recorded:
        print(f"parity spectrum: no randaug_spectrum fixtures in {store.root}; record them with "
              f"`BIG_VISION_DIR=... parity fixtures generate --family randaug_spectrum`", file=sys.stderr)
        return 2
    wanted = args.magnitude or sorted(recorded)
    missing = [m for m in wanted if m not in recorded]
    if missing:
        print(f"parity spectrum: no big_vision spectrum recorded for magnitude {missing} in {store.root}; "
              f"recorded: {sorted(recorded)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary, written, refused, verdicts = {}, [], [], []
    for m in wanted:
        reference = recorded[m]
        tv_name = f"torchvision v2.RandAugment({S.torchvision_magnitude(m)}/30)"
        tv = S.sample(S.torchvision_randaugment(m), fam.grid(), args.n, seed=args.seed)
        try:
            ours_a = S.sample(S.ours(m), fam.grid(), args.n, seed=args.seed)
            ours_b = S.sample(S.ours(m), fam.grid(), args.n, seed=args.seed + 1)
        except (ValueError, TypeError) as e:
            print(f"parity spectrum: M={m}: torch_impl's RandAugment17 refused it ({e}); plotting big_vision "
                  f"and torchvision only", file=sys.stderr)
            refused.append(m)
            written += render({"big_vision": reference, tv_name: tv}, out,
                              title=f"RandAugment(2, {m}) on the 224x224 B&W grid", stem=f"spectrum_m{m}")
            continue
        spectra = {"ours (torch_impl)": ours_a, "big_vision": reference, tv_name: tv}
        written += render(spectra, out, title=f"RandAugment(2, {m}) on the 224x224 B&W grid", stem=f"spectrum_m{m}")
        row = {}
        for metric in S.DISTANCES:
            row[metric] = {"ours_vs_big_vision": S.DISTANCES[metric](ours_a.hist, reference.hist),
                           "torchvision_vs_big_vision": S.DISTANCES[metric](tv.hist, reference.hist),
                           "ours_vs_ours_other_seed": S.DISTANCES[metric](ours_a.hist, ours_b.hist)}
        row["coloured_fraction"] = {"ours": ours_a.coloured_fraction(), "big_vision": reference.coloured_fraction(),
                                    "torchvision": tv.coloured_fraction()}
        row["n"] = {"ours": args.n, "big_vision": reference.n, "torchvision": args.n}
        summary[f"M={m}"] = row
        # The verdict uses the family's bar (fam.BAR noise floors; the floor here is one ours-vs-ours pair
        # at this --n, so it is coarser than `parity check`'s): ours must be within it, torchvision outside.
        for k, v in row.items():
            if k not in S.DISTANCES:
                continue
            floor = v["ours_vs_ours_other_seed"]
            r_ours = v["ours_vs_big_vision"] / floor if floor > 0 else math.inf
            r_tv = v["torchvision_vs_big_vision"] / floor if floor > 0 else math.inf
            v["bar_floors"], v["ours_floors"], v["torchvision_floors"] = fam.BAR, r_ours, r_tv
            v["verdict"] = "PASS" if r_ours <= fam.BAR and r_tv > fam.BAR else "FAIL"
            print(f"M={m} {k}: ours {v['ours_vs_big_vision']:.4g} = {r_ours:.2f} floors (bar <= {fam.BAR:g}) "
                  f"{'PASS' if r_ours <= fam.BAR else 'FAIL'}; torchvision {v['torchvision_vs_big_vision']:.4g} = "
                  f"{r_tv:.2f} floors {'REJECTED' if r_tv > fam.BAR else 'ACCEPTED!'}; noise floor (ours vs ours, "
                  f"other seed) {floor:.4g}")
        verdicts.append(all(row[k]["verdict"] == "PASS" for k in S.DISTANCES))
    (out / "spectrum.json").write_text(json.dumps(summary, indent=1))
    print(f"parity spectrum: wrote {len(written)} PNG(s) and spectrum.json into {out}")
    if verdicts:
        print(f"parity spectrum: {'PASS' if all(verdicts) else 'FAIL'} ({sum(verdicts)}/{len(verdicts)} magnitudes: "
              f"ours within {fam.BAR:g} noise floors of big_vision and torchvision outside, on every distance)")
        if args.n < 1000:
            print(f"parity spectrum: note: --n {args.n} makes a coarse noise floor (one pair of {args.n}-draw runs); "
                  f"the verdict of `parity check --family randaug_spectrum` uses the recorded sample sizes")
    return 1 if refused else 0
