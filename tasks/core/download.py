"""Downloads with a progress bar on stderr; network trouble is told apart from a bad URL, so that
only the former is retried."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from tasks.core.errors import DataError

CHUNK = 1 << 20


class TransientDownloadError(DataError):
    """A download that may work when tried again (network trouble, server error)."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "file://"))


def download_file(url: str, target: Path, timeout: float) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        problem = DataError if error.code < 500 else TransientDownloadError
        raise problem(f"cannot download: {error}; check the URL", url) from None
    except (urllib.error.URLError, OSError) as error:
        raise TransientDownloadError(f"cannot download: {error}; check the URL and the network", url) from None
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    with response, open(target, "wb") as handle:
        while chunk := response.read(CHUNK):
            handle.write(chunk)
            done += len(chunk)
            _progress(url, done, total)
    print(file=sys.stderr)
    if total and done != total:
        raise TransientDownloadError(f"download ended after {done} of {total} bytes; try again", url)


def _progress(url: str, done: int, total: int) -> None:
    name = url.rsplit("/", 1)[-1]
    if total:
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        print(f"\rDownloading {name} [{bar}] {done / 2**20:.1f}/{total / 2**20:.1f} MiB",
              end="", file=sys.stderr, flush=True)
    else:
        print(f"\rDownloading {name} {done / 2**20:.1f} MiB", end="", file=sys.stderr, flush=True)
