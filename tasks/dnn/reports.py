"""Reports of the DNN flows: a batch's contact sheet, timing table and summary; the colorizer's
held-out quality next to leaving the photos gray. Files under the run's folder."""

from __future__ import annotations

from pathlib import Path

from tasks.core.files import atomic_copy, atomic_write_bytes, atomic_write_json
from tasks.core.images import read_image
from tasks.core.storage import shown
from tasks.core.tables import markdown_table
from tasks.dnn.images import contact_sheet, write_timing
from tasks.dnn.net import read_net


def batch_report(kind: str, config: dict, out: Path, images: list[tuple[Path, str]], rows: list[dict],
                 seconds: float, engine: str, workers: int, sheet_images: int) -> tuple[dict, str]:
    """Contact sheet, timing table and summary.json under `out`; (summary, its markdown)."""
    totals = write_timing(rows, seconds, out)
    shown = [(name, path) for (path, name), row in zip(images, rows, strict=True) if row["status"] != "skipped"]
    pairs = [(name, read_image(path), read_image(out / name)) for name, path in shown[:sheet_images]]
    sheet = contact_sheet(pairs, out / "contact_sheet.png") if pairs else None
    skipped = [{"image": r["image"], "reason": r["reason"]} for r in rows if r["status"] == "skipped"]
    summary = {"kind": kind, **totals, "engine": engine, "workers": workers, "skipped_images": skipped,
               "contact_sheet": str(sheet) if sheet else None, "config": config}
    atomic_write_json(out / "summary.json", summary)
    lines = [f"# {kind}: {totals['images']} images", "", f"- {engine}, {workers} worker(s)",
             f"- {totals['done']} new, {totals['reused']} reused, {totals['skipped']} skipped; "
             f"{totals['images_per_second']} images/s", f"- outputs and contact sheet: `{out.resolve()}`", ""]
    if sheet:
        lines += ["![contact sheet: inputs and outputs](contact_sheet.png)", ""]
    if skipped:
        lines += ["## Skipped", "", markdown_table(skipped, ["image", "reason"]), ""]
    return summary, "\n".join(lines)


def colorizer_report(entry: Path, held_out: list[Path], size: int, out: Path) -> tuple[dict, str]:
    """Copy the trained colorizer to `out`; its quality on the held-out photos through the full colorize
    pipeline (quality.json/.md) and a contact sheet; (quality without the per-photo rows, its markdown)."""
    from tasks.dnn.colorize import colorize
    from tasks.dnn.colorizer import quality

    for name in ("colorizer.onnx", "colorizer.json", "colorizer.keras"):
        atomic_copy(entry / name, out / name)
    net = read_net(out / "colorizer.onnx")
    photos = [(path, read_image(path)) for path in held_out]
    result = quality(net, photos, size)
    atomic_write_json(out / "quality.json", result)
    columns = ["photo", "psnr", "psnr_gray", "lab_error", "lab_error_gray"]
    summary = (f"# Colorizer quality on {result['photos']} held-out photos\n\n"
               f"| | PSNR (dB, higher is better) | mean Lab colour error (CIE76, lower is better) |\n|---|---|---|\n"
               f"| our colorizer | {result['psnr']:.2f} | {result['lab_error']:.2f} |\n"
               f"| gray (ab = 0) | {result['psnr_gray']:.2f} | {result['lab_error_gray']:.2f} |\n")
    table = markdown_table(result["per_photo"], columns)
    pairs = [(path.name, image, colorize(net, image, size)) for path, image in photos[:12]]
    contact_sheet(pairs, out / "contact_sheet.png")
    summary += "\n![held-out photos: original and colorized](contact_sheet.png)\n"
    atomic_write_bytes(out / "quality.md", f"{summary}\n{table}\n".encode())
    kept = {key: value for key, value in result.items() if key != "per_photo"}
    return kept | {"model": shown(out / "colorizer.onnx")}, summary
