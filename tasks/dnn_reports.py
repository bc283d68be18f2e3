"""Reports of the DNN flows: a batch's contact sheet, timing table and summary; the colorizer's
held-out quality next to leaving the photos gray. Files under the run's folder and Prefect artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.cache import atomic_write_bytes, atomic_write_json
from tasks.dnn_images import contact_sheet, decode_image, write_timing
from tasks.dnn_models import read_net
from tasks.evaluate import markdown_table


@task(name="dnn-report", cache_policy=NO_CACHE)
def batch_report_task(kind: str, config: dict, out: Path, images: list[tuple[Path, str]], rows: list[dict],
                      seconds: float, engine: str, workers: int, sheet_images: int) -> dict:
    """Contact sheet, timing table, summary.json; the summary as a Prefect artifact."""
    totals = write_timing(rows, seconds, out)
    shown = [(name, path) for (path, name), row in zip(images, rows, strict=True) if row["status"] != "skipped"]
    pairs = [(name, decode_image(path.read_bytes(), path), decode_image((out / name).read_bytes(), out / name))
             for name, path in shown[:sheet_images]]
    sheet = contact_sheet(pairs, out / "contact_sheet.png") if pairs else None
    skipped = [{"image": r["image"], "reason": r["reason"]} for r in rows if r["status"] == "skipped"]
    summary = {"kind": kind, **totals, "engine": engine, "workers": workers, "skipped_images": skipped,
               "contact_sheet": str(sheet) if sheet else None, "config": config}
    atomic_write_json(out / "summary.json", summary)
    lines = [f"# {kind}: {totals['images']} images", "", f"- {engine}, {workers} worker(s)",
             f"- {totals['done']} new, {totals['reused']} reused, {totals['skipped']} skipped; "
             f"{totals['images_per_second']} images/s", f"- outputs and contact sheet: `{out.resolve()}`", ""]
    if skipped:
        lines += ["## Skipped", "", markdown_table(skipped, ["image", "reason"]), ""]
    create_markdown_artifact("\n".join(lines), key=f"{kind}-summary", description=f"{kind} batch summary")
    return summary


@task(name="colorizer-report", cache_policy=NO_CACHE)
def colorizer_report_task(entry: Path, held_out: list[Path], size: int, out: Path) -> dict:
    """Copy the trained colorizer to `out`; its quality on the held-out photos through the full
    colorize pipeline (quality.json/.md), a contact sheet and an artifact."""
    from tasks.colorize import colorize
    from tasks.colorizer_training import quality

    out.mkdir(parents=True, exist_ok=True)
    for name in ("colorizer.onnx", "colorizer.json", "colorizer.keras"):
        tmp = out / f".{name}.tmp"
        shutil.copyfile(entry / name, tmp)
        tmp.replace(out / name)
    net = read_net(out / "colorizer.onnx")
    photos = [(path, decode_image(path.read_bytes(), path)) for path in held_out]
    result = quality(net, photos, size)
    atomic_write_json(out / "quality.json", result)
    columns = ["photo", "psnr", "psnr_gray", "lab_error", "lab_error_gray"]
    summary = (f"# Colorizer quality on {result['photos']} held-out photos\n\n"
               f"| | PSNR (dB, higher is better) | mean Lab colour error (CIE76, lower is better) |\n|---|---|---|\n"
               f"| our colorizer | {result['psnr']:.2f} | {result['lab_error']:.2f} |\n"
               f"| gray (ab = 0) | {result['psnr_gray']:.2f} | {result['lab_error_gray']:.2f} |\n")
    table = markdown_table(result["per_photo"], columns)
    atomic_write_bytes(out / "quality.md", f"{summary}\n{table}\n".encode())
    pairs = [(path.name, image, colorize(net, image, size)) for path, image in photos[:12]]
    contact_sheet(pairs, out / "contact_sheet.png")
    create_markdown_artifact(summary, key="colorizer-quality", description="Our colorizer vs leaving the photos gray")
    get_run_logger().info("Colorizer on %d held-out photos: PSNR %.2f dB (gray %.2f), Lab error %.2f (gray %.2f)",
                          result["photos"], result["psnr"], result["psnr_gray"], result["lab_error"],
                          result["lab_error_gray"])
    return {key: value for key, value in result.items() if key != "per_photo"} | {"model": str(out / "colorizer.onnx")}
