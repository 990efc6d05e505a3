"""Render check results: a terminal table, results.json, report.md and report.html (with figures)."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

from parity.checks import CheckResult

COLUMNS = ("family", "case", "metric", "value", "bar", "verdict")


def _row(r: CheckResult) -> tuple[str, ...]:
    op = ">=" if r.higher_is_better else "<="
    value = "nan" if math.isnan(r.value) else f"{r.value:.4g}"
    case = r.case + {"control": " (negative control)", "internal": " (internal consistency)", "parity": ""}[r.kind]
    return (r.family, case, r.metric, value, f"{op} {r.bar:g}", r.verdict)


def table(results: list[CheckResult]) -> str:
    rows = [COLUMNS] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results: list[CheckResult]) -> str:
    """Counts per kind, each out of everything declared (a check that could not run counts as a failure).
    Internal-consistency checks (ours vs ours) are counted apart from parity with big_vision."""
    pos = [r for r in results if r.kind == "parity"]
    neg = [r for r in results if r.kind == "control"]
    internal = [r for r in results if r.kind == "internal"]
    bad = [r for r in results if not r.ok]
    not_run = sum(math.isnan(r.value) for r in results)
    text = (f"{sum(r.ok for r in pos)}/{len(pos)} parity checks passed, {sum(r.ok for r in neg)}/{len(neg)} "
            f"negative controls rejected")
    if internal:
        text += f", {sum(r.ok for r in internal)}/{len(internal)} internal-consistency checks passed"
    text += f", {len(bad)} problem(s)"
    if not_run:
        text += f" ({not_run} could not run)"
    return text


def failures(results: list[CheckResult]) -> str:
    return "\n".join(r.describe() for r in results if not r.ok)


def write_report(results: list[CheckResult], outdir: Path, figures: list[Path] = ()) -> dict[str, Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"json": outdir / "results.json", "md": outdir / "report.md", "html": outdir / "report.html"}
    paths["json"].write_text(json.dumps({"summary": summary(results), "results": [r.as_dict() for r in results]},
                                        indent=1))
    md = ["# vit-parity report", "", summary(results), "",
          "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in _row(r)) + " |" for r in results]
    bad = [r for r in results if not r.ok]
    if bad:
        md += ["", "## Problems", ""] + [f"- {r.describe()}" for r in bad]
    if figures:
        md += ["", "## Figures", ""] + [f"![{p.stem}]({p.relative_to(outdir).as_posix()})" for p in figures]
    paths["md"].write_text("\n".join(md) + "\n")
    rows = "".join(
        "<tr class='{}'>{}</tr>".format("ok" if r.ok else "bad", "".join(f"<td>{html.escape(c)}</td>" for c in _row(r)))
        for r in results)
    figs = "".join(f"<figure><img src='{html.escape(p.relative_to(outdir).as_posix())}'>"
                   f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in figures)
    paths["html"].write_text(
        "<!doctype html><meta charset='utf-8'><title>vit-parity report</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px}.bad{background:#fcc}.ok{background:#efe}"
        "img{max-width:100%}</style>"
        f"<h1>vit-parity report</h1><p>{html.escape(summary(results))}</p><table><tr>"
        + "".join(f"<th>{c}</th>" for c in COLUMNS) + f"</tr>{rows}</table>{figs}")
    return paths
