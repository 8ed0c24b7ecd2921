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
