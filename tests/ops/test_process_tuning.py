"""Tuning of a process the bridge owns: malloc's large blocks, and what the daemon imports."""

from __future__ import annotations

import platform
import subprocess
import sys


def test_large_blocks_are_kept_for_reuse_where_glibc_runs() -> None:
    # In a child process: the setting is process-wide, and this one runs other tests.
    code = "from bridge.process_tuning import reuse_large_blocks as r; print(r())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = platform.libc_ver()[0] == "glibc"
    assert out.stdout.strip() == str(expected)


def test_the_daemon_does_not_load_py_consul_until_a_kv_read_needs_it() -> None:
    code = (
        "import sys, bridge.daemon as d, bridge.cli\n"
        "assert 'consul' not in sys.modules and 'requests' not in sys.modules\n"
        "d.read_failures()\n"
        "print('consul' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


FREED_MEMORY_CHILD = """
import os
from bridge.process_tuning import FreedMemory, LARGE_ANSWER_BYTES, reuse_large_blocks
reuse_large_blocks()  # as the daemon runs: megabyte blocks come from the heap
freed = FreedMemory(limit=4 << 20)

def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

first = freed.after_answer(LARGE_ANSWER_BYTES)  # the low point: nothing has grown yet
blocks = [b"x" * (1 << 20) for _ in range(40)]  # written: resident
del blocks[::2]  # twenty 1 MB holes between blocks still held: the heap's top cannot shrink
before = rss()
small = freed.after_answer(LARGE_ANSWER_BYTES - 1)  # a small answer never looks
large = freed.after_answer(LARGE_ANSWER_BYTES)  # 20 MB more free than the low point
handed_back = before - rss() >= 16 << 20
again = freed.after_answer(LARGE_ANSWER_BYTES)  # still free, but counted from the trim
print(first, small, large, handed_back, again, freed.trims)
"""


def test_freed_heap_memory_is_handed_back_past_the_limit_where_glibc_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-c", FREED_MEMORY_CHILD], capture_output=True, text=True, check=True
    )
    if platform.libc_ver()[0] == "glibc":
        # 20 MB freed > 4 MB: trimmed once, and RSS fell by most of it.
        assert out.stdout.split() == ["False", "False", "True", "True", "False", "1"]
    else:
        assert out.stdout.split() == ["False", "False", "False", "False", "False", "0"]
