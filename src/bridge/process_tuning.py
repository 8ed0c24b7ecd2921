"""Tuning for a process the bridge (or an emulator) owns: the cycle collector and malloc.

Only for a process that is ours: a program that embeds the bridge keeps its
own settings, so callers apply these from their command's entry point only.
"""

from __future__ import annotations

import ctypes
import gc

# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK_REUSE_BYTES = 32 << 20  # the most glibc takes for M_MMAP_THRESHOLD on 64 bits
TRIM_THRESHOLD_BYTES = 64 << 20


def tune_own_process() -> None:
    """Everything here that suits a long-running process holding a large state (the
    daemon, an emulator), applied from its command's entry point."""
    collect_less_often()
    reuse_large_blocks()


def collect_less_often() -> None:
    """Run Python's cycle collector less often than its defaults.

    The bridge keeps a few objects per service for its whole life, and each
    collection of the older generations walks all of them: at 10,000 services
    the default thresholds cost about 40 % of planning the initial sync. Cycles
    are rare here (reference counting frees almost everything), so collecting
    the young generation every 50,000 allocations instead of 700 holds little
    more memory. What the imports built lives as long as the process: frozen,
    it is never walked again.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def freeze_long_lived() -> None:
    """After the first full sync, move what it built out of the cycle collector's way.

    At 10,000 services the first load leaves about half a million long-lived
    objects; a full collection walks them all (0.3 to 1.4 s measured), and the
    allocations of a burst or a resync trigger one even with
    :func:`collect_less_often`'s thresholds. Frozen objects are still freed by
    reference counting when they are replaced. Nothing is collected first:
    the cyclic garbage of that moment (132 objects after a 10,000-service first
    sync) is kept for good, where collecting even the young generations held
    the loop for 130 ms.
    """
    gc.freeze()


def reuse_large_blocks() -> bool:
    """Let glibc keep freed multi-megabyte blocks for reuse instead of unmapping them.

    At 10,000 services every check change brings a ~5 MB ``health/state/any``
    answer (the emulator renders it, the bridge reads and compares it). By
    default glibc serves each such block with a fresh ``mmap`` and returns it
    with ``munmap`` when freed, so every answer pays page faults on all of its
    pages: measured here, 3 ms to join 5 MB into fresh memory against 0.4 ms
    into reused memory. Served from the heap, the next answer reuses the last
    one's pages. Returns False where there is no glibc ``mallopt`` (musl, macOS).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Setting either threshold turns off glibc's own adjustment of both, so set both.
    return bool(
        mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_REUSE_BYTES)
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
