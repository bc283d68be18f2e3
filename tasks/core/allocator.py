"""glibc's malloc arenas in the flow's process.

glibc gives each thread that allocates an arena of its own, up to 8 per core, and memory freed in one arena is
kept for that arena. The flow's process has many threads (Prefect's, Dask's scheduler and client, the task
runner's), and what they keep grows with the data they pass along: at 50,000 houses the process peaked 20 MiB
higher with every thread's arena than with two (545 against 525 MiB; at 5,000 houses 458 against 455). Two
arenas are enough for a process whose heavy work runs on a cluster's workers or in native libraries."""

from __future__ import annotations

import ctypes
import os
import platform

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
FLOW_ARENAS = 2


def limit_malloc_arenas(arenas: int = FLOW_ARENAS) -> bool:
    """At most `arenas` malloc arenas in this process from now on (arenas that exist stay; threads share them
    beyond the limit). Not done where the allocator is not glibc's, or where the user chose a limit
    (MALLOC_ARENA_MAX or GLIBC_TUNABLES' glibc.malloc.arena_max, which glibc honoured as the process started).
    True when it was done."""
    chosen = os.environ.get("MALLOC_ARENA_MAX") or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", "")
    if chosen or platform.libc_ver()[0] != "glibc":
        return False
    # CDLL(None): this process's own symbols, glibc's mallopt among them (no search for the library).
    return ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas) == 1
