"""What scaling out buys and costs, measured side by side in one run on this machine: preprocessing generated
houses (real photos of each room kind, perturbed and re-encoded: `synthetic-data`) at several sizes on a local
Dask cluster of 1 and of 2 worker processes of one core each (seconds, houses per second, peak memory of the
flow's process and of each worker process), then training throughput of the stream trainer (batches read from
the split file) next to in-memory `fit` on the same data, with each one's peak memory at two sizes, and a
written extrapolation to 1,000,000 houses (4,000,000 photos) from the measured per-house costs.

Usage: python bench/bench_scale.py [--sizes 5000,20000,50000] [--train-sizes 2000,5000] [--work DIR]
       [--reads-per-core 4,0] (reading threads per decoding thread, HOUSE_PIPELINE_READS_PER_CORE: each value
       on 1 and 2 workers, side by side) [--placement core-each,product] (where the workers' threads run, each
       value on 1 and 2 workers too: core-each, the bench keeps each worker process on one core of its own;
       product, as the product places them; free, HOUSE_PIPELINE_PIN_WORKERS=0). The first value of each is the
       setting the memory and extrapolation lines use. With core-each, a worker is exactly one core; as the
       product places them, a single worker's reading threads and its Dask and Prefect threads also run on the
       core it leaves idle (which two workers do not have), and two workers keep to a core each
       (tasks/core/worker_cores.py); free, two workers' threads go wherever the system puts them.
The generated houses are written once into --work (the largest size; smaller sizes are its first houses, linked)
and kept for the next run. Every command reports to one Prefect server started here (no temporary server in the
timings). Peak memory is the largest resident set seen by polling each process every 0.1 s; CPU seconds (user +
system) of the flow's process, of its worker processes and of the server, with their sum as a share of the
machine's cores over the run ("CPU busy": where it is near 100 %, nothing is left to add).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core import worker_cores  # noqa: E402
from tests import servers  # noqa: E402

GIB = 1024 ** 3
PLACEMENTS = {"core-each": "the bench keeps each worker process on one core of its own (a worker is one core, as "
                           "a core added to a cluster)",
              "product": "as the product places them (two workers that take both cores on one each; one worker "
                         "free, so its reading threads use the core it leaves idle)",
              "free": "HOUSE_PIPELINE_PIN_WORKERS=0 (the system puts every thread where it likes)"}


POLL_SECONDS = 0.25  # each poll reads every process of the machine: the watch's own CPU stays below 1 % of a core


class ProcessWatch:
    """The peak resident memory and the CPU seconds of a process, of each of its descendants and of `others`
    (the Prefect server), polled in a thread. With `pin`, every thread of each Dask worker process is kept on one
    core of its own (the first worker on core 0, the next on core 1, ...): a worker is then exactly one core, its
    reading threads included, as a core added on a cluster is; the flow's process and the server stay free."""

    def __init__(self, pid: int, others: tuple[int, ...] = (), pin: bool = False):
        self.pid, self.pin, self.peaks, self.names, self.cpu = pid, pin, {}, {}, {}
        self.cores: dict[int, int] = {}  # worker process -> its core, when pinned
        self.cpu_before = {other: _cpu_seconds(other) for other in others}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.is_set():
            try:
                root = psutil.Process(self.pid)
                for process in [root, *root.children(recursive=True)]:
                    try:
                        rss = process.memory_info().rss
                        times = process.cpu_times()
                        if process.pid not in self.names:
                            self.names[process.pid] = " ".join(process.cmdline())
                    except psutil.Error:
                        continue
                    self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)
                    self.cpu[process.pid] = times.user + times.system  # the last seen: at most a poll short
                    if self.pin and "spawn_main" in self.names[process.pid]:  # a worker, on its core at every
                        core = self.cores.setdefault(process.pid, len(self.cores) % (os.cpu_count() or 1))  # poll
                        worker_cores.pin_every_thread({core}, process.pid)  # (its new threads too)
            except psutil.Error:
                pass
            time.sleep(POLL_SECONDS)

    def stop(self) -> dict[str, float]:
        """Peaks in GiB: the flow's process, and the largest of the Dask worker processes (0 when none); CPU
        seconds: the flow's process, all worker processes together, and the other processes given."""
        self.done.set()
        self.thread.join()
        workers = [pid for pid in self.peaks if pid != self.pid and "spawn_main" in self.names.get(pid, "")]
        return {"flow_gib": self.peaks.get(self.pid, 0) / GIB,
                "worker_gib": max((self.peaks[pid] for pid in workers), default=0) / GIB,
                "worker_processes": len(workers), "flow_cpu_s": self.cpu.get(self.pid, 0),
                "workers_cpu_s": sum(self.cpu[pid] for pid in workers),
                "other_cpu_s": sum(self.cpu[pid] for pid in self.cpu if pid != self.pid and pid not in workers)
                + sum(_cpu_seconds(other) - before for other, before in self.cpu_before.items())}


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and of its descendants still running (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def run_flow(args: list[str], env: dict, log: Path | None = None, others: tuple[int, ...] = (),
             pin: bool = False) -> dict:
    """Run one command; its seconds, peak memory and CPU seconds (and those of the processes `others` meanwhile;
    its output kept in `log` when given); with `pin`, each worker process on a core of its own."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "flows", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    memory = ProcessWatch(process.pid, others, pin)
    output = process.communicate()[0]
    seconds = time.perf_counter() - started
    peaks = memory.stop()
    if log is not None:
        log.write_text(output)
    if process.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} failed:\n{output[-3000:]}")
    return {"seconds": seconds, **peaks}


def subflow_seconds(output: str, name: str) -> float | None:
    """Seconds between the first and the last log line of the subflow run `name` (None: not in the log)."""
    stamps = [time.strptime(line[:8], "%H:%M:%S") for line in output.splitlines()
              if f"Flow run '{name}-" in line and line[:2].isdigit()]
    if not stamps:
        return None
    first, last = (s.tm_hour * 3600 + s.tm_min * 60 + s.tm_sec for s in (stamps[0], stamps[-1]))
    return (last - first) % 86400


def epoch_stamps(output: str) -> list[float]:
    """Seconds of day at which each "Epoch k/N" progress line of the training task was logged (not those of the
    interval calibration's folds, which train other models after it)."""
    stamps = []
    for line in output.splitlines():
        found = re.match(r"(\d\d):(\d\d):(\d\d\.\d+) .*Task run 'train-[^']*' - Epoch \d+/\d+:", line)
        if found:
            stamps.append(int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3]))
    return stamps


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def generated(work: Path, source: str, sizes: list[int], env: dict) -> dict[int, Path]:
    """The largest set generated once (kept across runs), each smaller one its first houses, linked."""
    largest = max(sizes)
    full = work / f"houses-{largest}"
    if not (full / "GENERATED.txt").is_file():
        shutil.rmtree(full, ignore_errors=True)
        started = time.perf_counter()
        print(f"Generating {largest} houses into {full} ...", flush=True)
        subprocess.run([sys.executable, "-m", "flows", "synthetic-data", "--houses", str(largest), "--source",
                        source, str(full)], cwd=ROOT, env=env, check=True)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    folders = {largest: full}
    lines = (full / "HousesInfo.txt").read_text().splitlines()
    for size in sizes:
        if size == largest:
            continue
        folder = work / f"houses-{size}"
        if not (folder / "HousesInfo.txt").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for number in range(1, size + 1):
                for kind in ("bathroom", "bedroom", "frontal", "kitchen"):
                    (folder / f"{number}_{kind}.jpg").symlink_to(full / f"{number}_{kind}.jpg")
            (folder / "HousesInfo.txt").write_text("".join(line + "\n" for line in lines[:size]))
        folders[size] = folder
    return folders


def preprocess(sizes: list[int], folders: dict[int, Path], work: Path, env: dict, reads: list[int],
               placements: list[str], server_pid: int) -> list[dict]:
    """Each size on 1 and on 2 worker processes of one core each: a worker stands for a core (or a machine) added,
    as on a cluster; left alone, one worker would take both cores of this machine and tie with two. Each value of
    `reads` (reading threads per core) and of `placements` (PLACEMENTS) in turn."""
    rows = []
    for size in sizes:
        warm_page_cache(folders[size])
        for per_core, placement, workers in ((r, p, w) for r in reads for p in placements for w in (1, 2)):
            name = (f"{size}-w{workers}" + (f"-r{per_core}" if per_core != reads[0] else "")
                    + ("" if placement == placements[0] else f"-{placement}"))
            shutil.rmtree(work / f"cache-{name}", ignore_errors=True)
            measured = run_flow(["preprocess", "--data", str(folders[size]), "--cache", str(work / f"cache-{name}"),
                                 "--out", str(work / f"out-{name}"), "--workers", str(workers)],
                                {**env, "HOUSE_PIPELINE_WORKER_THREADS": "1",
                                 "HOUSE_PIPELINE_READS_PER_CORE": str(per_core),
                                 "HOUSE_PIPELINE_PIN_WORKERS": "0" if placement == "free" else "1"},
                                work / f"log-{name}.txt", (server_pid,), placement == "core-each")
            summary = json.loads((work / f"out-{name}" / "summary.json").read_text())
            log = (work / f"log-{name}.txt").read_text()
            checks, hashes, shards = (subflow_seconds(log, name) for name in ("inspect-photos", "photo-hashes",
                                                                              "montage-shards"))
            row = {"houses": size, "reads": per_core, "placement": placement, "workers": workers,
                   "kept": summary["houses_kept"], **measured, "shards_s": shards, "hashes_s": hashes,
                   "checks_s": checks, "houses_per_s": summary["houses_kept"] / measured["seconds"],
                   "shard_bytes": folder_bytes(work / f"cache-{name}" / "montages")}
            rows.append(row)
            print(f"  preprocess {size:>6} houses, {workers} worker(s), {per_core} reads/core, "
                  f"placement {placement}: {row['seconds']:7.1f} s "
                  f"(on the cluster: photo checks {checks} s, hashes {hashes} s, montage shards {shards} s), "
                  f"{row['houses_per_s']:6.1f} houses/s, peak flow {row['flow_gib']:.2f} GiB, "
                  f"worker {row['worker_gib']:.2f} GiB; CPU s: flow {row['flow_cpu_s']:.0f}, workers "
                  f"{row['workers_cpu_s']:.0f}, server {row['other_cpu_s']:.0f}", flush=True)
    return rows


def training(sizes: list[int], folders: dict[int, Path], work: Path, env: dict, epochs: int) -> list[dict]:
    rows = []
    for size in sizes:
        cache = work / f"cache-{size}-w2"
        for trainer in ("fit", "stream"):
            out = work / f"train-{size}-{trainer}"
            args = ["train", "--data", str(folders[size]), "--cache", str(cache), "--out", str(out), "--strategy",
                    "mixed", "--trainer", trainer, "--epochs", str(epochs), "--tracking", "off",
                    "--validation-fraction", "0", "--interval-folds", "2"]  # the fewest: not measured here
            subprocess.run([sys.executable, "-m", "flows", "preprocess", "--data", str(folders[size]), "--cache",
                            str(cache), "--out", str(work / "pre"), "--workers", "2"], cwd=ROOT, env=env,
                           check=True, capture_output=True)  # cached when the preprocess step ran at this size
            shutil.rmtree(cache / "models", ignore_errors=True)  # a training, not a cache hit
            measured = run_flow(args, env, work / f"log-train-{size}-{trainer}.txt")
            metrics = json.loads((out / "metrics.json").read_text())
            stamps = epoch_stamps((work / f"log-train-{size}-{trainer}.txt").read_text())
            # Steady state: epochs 2..N (the first pays for tracing the graph), as bench_train.py counts.
            samples = metrics["n_train"] * (len(stamps) - 1) / ((stamps[-1] - stamps[0]) % 86400)
            whole = metrics["n_train"] * metrics["epochs"] / metrics["seconds"]
            rows.append({"houses": size, "trainer": trainer, "samples_per_s": samples, "whole_run_per_s": whole,
                         "train_seconds": metrics["seconds"], **measured})
            print(f"  train mixed {size:>6} houses, {trainer:>6}: {samples:7.1f} samples/s over epochs "
                  f"2..{len(stamps)} ({whole:.1f} over the whole training), peak {measured['flow_gib']:.2f} GiB",
                  flush=True)
    return rows


def report(pre: list[dict], train: list[dict], generated_bytes_per_house: float, load: tuple) -> None:
    print(f"\nMachine: {os.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.0f} GiB; load average at "
          f"start {load[0]:.2f}. Each Dask worker process limited to one core (HOUSE_PIPELINE_WORKER_THREADS=1); "
          "the flow process's own steps (listing the folder, the duplicate groups, the split files) run there in both "
          "settings; each photo's check and sha256, the perceptual hashes and the montage shards on the cluster")
    print("\n| houses | reads/core | placement | workers | kept | seconds | on the cluster: checks + hashes + "
          "shards | houses/s | speed-up | peak flow GiB | peak worker GiB | CPU s: flow + workers + server | "
          "CPU busy |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    main_reads, main_place = pre[0]["reads"], pre[0]["placement"]
    by_setting = {(r["houses"], r["reads"], r["placement"], r["workers"]): r for r in pre}
    by = {(h, w): r for (h, reads, place, w), r in by_setting.items() if reads == main_reads and place == main_place}
    for r in pre:
        one = by_setting[(r["houses"], r["reads"], r["placement"], 1)]
        print(f"| {r['houses']} | {r['reads']} | {r['placement']} | {r['workers']} | {r['kept']} | "
              f"{r['seconds']:.1f} | "
              f"{r['checks_s']} + {r['hashes_s']} + {r['shards_s']} | "
              f"{r['houses_per_s']:.1f} | "
              f"{one['seconds'] / r['seconds']:.2f}x | {r['flow_gib']:.2f} | {r['worker_gib']:.2f} | "
              f"{r['flow_cpu_s']:.0f} + {r['workers_cpu_s']:.0f} + {r['other_cpu_s']:.0f} | "
              f"{cpu_busy(r):.0f} % |")
    sizes = sorted({r["houses"] for r in pre})
    for workers in (1, 2):
        peaks = [max(by[(s, workers)]["flow_gib"], by[(s, workers)]["worker_gib"]) for s in sizes]
        print(f"Peak memory per process, {workers} worker(s), {main_reads} reads/core, "
              f"{main_place}, {sizes[0]} -> {sizes[-1]} "
              f"houses: {peaks[0]:.2f} -> {peaks[-1]:.2f} GiB ({(peaks[-1] / peaks[0] - 1) * 100:+.0f} %)")
    if train:
        print("\n| houses | trainer | samples/s (epochs 2..N) | ratio to fit | whole training: samples/s, ratio | "
              "peak GiB |")
        print("|---:|---|---:|---:|---:|---:|")
        fits = {r["houses"]: r for r in train if r["trainer"] == "fit"}
        for r in train:
            fit = fits[r["houses"]]
            print(f"| {r['houses']} | {r['trainer']} | {r['samples_per_s']:.1f} | "
                  f"{r['samples_per_s'] / fit['samples_per_s']:.2f}x | {r['whole_run_per_s']:.1f}, "
                  f"{r['whole_run_per_s'] / fit['whole_run_per_s']:.2f}x | {r['flow_gib']:.2f} |")
    largest = by[(sizes[-1], 2)]
    clustered = sum(largest[f"{part}_s"] or 0 for part in ("checks", "hashes", "shards"))
    serial = (largest["seconds"] - clustered) / largest["kept"]  # s per house in the flow's process
    core_seconds = clustered * 2 / largest["kept"]  # s per house of one worker core
    shard_bytes = largest["shard_bytes"] / largest["kept"]
    print(f"\nExtrapolation to 1,000,000 houses (4,000,000 photos), from {sizes[-1]} houses on 2 workers: "
          f"{serial * 1000:.1f} ms per house in the flow's process, {core_seconds * 1000:.1f} ms per house of a worker "
          f"core, {shard_bytes / 1024:.1f} KiB of montage shard and {generated_bytes_per_house / 1024:.0f} KiB of "
          "photos per house")
    print(f"  storage: photos {generated_bytes_per_house * 1e6 / 1e9:.0f} GB, montage shards "
          f"{shard_bytes * 1e6 / 1e9:.1f} GB (plus the dataset's split files, about the same again)")
    for machines, cores in ((1, 2), (10, 8), (50, 8)):
        hours = 1e6 * (serial + core_seconds / (machines * cores)) / 3600
        print(f"  preprocessing on {machines} machine(s) of {cores} cores: {hours:.2f} h (the flow's own part, "
              f"{1e6 * serial / 3600:.2f} h of it, does not shrink with machines; object-store reads and the "
              "scheduler not measured at that scale)")


def cpu_busy(row: dict) -> float:
    """The run's CPU seconds (all its processes and the server) as a percentage of the machine's core-seconds."""
    used = row["flow_cpu_s"] + row["workers_cpu_s"] + row["other_cpu_s"]
    return 100 * used / (row["seconds"] * (os.cpu_count() or 1))


def warm_page_cache(folder: Path) -> None:
    """Read every photo once before the timed runs, so that the first setting does not pay for cold disk reads
    the second one is spared (when the photos fit in memory; else both read from disk)."""
    started = time.perf_counter()
    for photo in folder.glob("*.jpg"):
        photo.read_bytes()
    print(f"  (photos of {folder.name} read once in {time.perf_counter() - started:.0f} s before timing)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,20000,50000", help="houses to preprocess, comma-separated")
    parser.add_argument("--train-sizes", default="2000,5000", help="houses for the training throughput (two "
                        "sizes show whether memory grows); empty: skip")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (throughput over epochs 2..N)")
    parser.add_argument("--reads-per-core", default="4", help="reading threads per decoding thread "
                        "(HOUSE_PIPELINE_READS_PER_CORE), comma-separated: each on 1 and 2 workers; 0: no read-ahead")
    parser.add_argument("--placement", default="core-each,product", help="where the workers' threads run, "
                        "comma-separated, each on 1 and 2 workers side by side: " + "; ".join(
                            f"{name}: {meaning}" for name, meaning in PLACEMENTS.items()))
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "datasets" / "houses"))
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "scale")
    options = parser.parse_args()
    sizes = sorted(int(s) for s in options.sizes.split(","))
    train_sizes = sorted(int(s) for s in options.train_sizes.split(",") if s)
    reads = [int(r) for r in options.reads_per_core.split(",")]
    placements = options.placement.split(",")
    if not set(placements) <= set(PLACEMENTS):
        parser.error(f"--placement {options.placement}: give some of {', '.join(PLACEMENTS)}, comma-separated")
    options.work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    server = servers.prefect_server(options.work / "prefect").start()
    env = {**os.environ, "PREFECT_API_URL": servers.api_url(server), "HOUSE_PIPELINE_TRACKING": "off",
           "HOUSE_PIPELINE_HOME": str(options.work / "home")}
    try:
        folders = generated(options.work, options.source, sorted({*sizes, *train_sizes}), env)
        largest = max(folders)
        generated_bytes = folder_bytes(folders[largest]) / largest
        pre = preprocess(sizes, folders, options.work, env, reads, placements, server.process.pid)
        train = training(train_sizes, folders, options.work, env, options.epochs)
    finally:
        server.stop()
    report(pre, train, generated_bytes, load)


if __name__ == "__main__":
    main()
