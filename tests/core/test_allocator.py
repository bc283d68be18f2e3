"""The flow's process keeps to two malloc arenas however many threads allocate (tasks/core/allocator.py)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")

# Eight threads allocate at the same time (each 40 blocks of 100 KB, under glibc's mmap threshold, so from an
# arena), then glibc's malloc_stats lists the process's arenas on stderr.
THREADS = """
import ctypes, ctypes.util, sys, threading
from tasks.core.allocator import limit_malloc_arenas
if sys.argv[1] == "limit":
    print(limit_malloc_arenas())
elif sys.argv[1] == "command":  # a flow command refused at once, its process going on
    from flows.__main__ import main
    print(main(["preprocess", "--data", "/no/such/folder", "--out", "/no/such/out"]))
barrier = threading.Barrier(8)
def allocate():
    barrier.wait()
    held = [bytearray(100_000) for _ in range(40)]
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
sys.stdout.flush()
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()
"""


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", THREADS, mode], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, **env}, check=True)
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


def test_the_flow_process_keeps_to_two_arenas_however_many_threads_allocate():
    assert _arenas("limit") == ("True", 2)
    applied, arenas = _arenas("free")  # the same threads without the limit: an arena each, or near
    assert arenas > 4, arenas


def test_a_flow_command_limits_its_process_to_two_arenas():
    exit_code, arenas = _arenas("command")
    assert exit_code.splitlines()[-1] != "0" and arenas == 2, (exit_code, arenas)


@pytest.mark.parametrize("variable, value", [("MALLOC_ARENA_MAX", "3"),
                                             ("GLIBC_TUNABLES", "glibc.malloc.arena_max=3")])
def test_an_arena_limit_set_by_the_user_is_left_as_it_is(variable, value):
    assert _arenas("limit", **{variable: value}) == ("False", 3)
