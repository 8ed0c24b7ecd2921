"""Tuning for a process the bridge (or an emulator) owns: the cycle collector and malloc.

Only for a process that is ours: a program that embeds the bridge keeps its
own settings, so callers apply these from their command's entry point only.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

# glibc's mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK_REUSE_BYTES = 32 << 20  # the most glibc takes for M_MMAP_THRESHOLD on 64 bits
TRIM_THRESHOLD_BYTES = 64 << 20
FREED_BYTES_LIMIT = 16 << 20  # free heap memory kept before it is handed back to the kernel
LARGE_ANSWER_BYTES = 256 << 10  # answers this large are what leave holes in the heap


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


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


class FreedMemory:
    """Hands the pages of freed heap blocks back to the kernel once too many pile up.

    With :func:`reuse_large_blocks`, multi-megabyte answers are served from the
    heap; but each answer is a few hundred bytes larger or smaller than the
    last (one instance more or less), so a freed block is sometimes a little
    too small for the next one, which then takes fresh memory. In one run in
    three, a burst of 300 registrations at 10,000 services left 24 MB free in
    the heap instead of 13, all of it still resident: 10 MB more RSS, kept.
    ``malloc_trim(0)`` gives back the pages of every free block (glibc
    madvises them), so memory lying free costs no RSS; the blocks stay, and
    are paged in again when reused.

    glibc tells how much is free, not how much of it is still resident, so the
    rule is: trim once more than ``limit`` bytes are free, and after a trim,
    once ``limit`` more are free than the trim left (those are no longer
    resident). A steady 10,000-service bridge keeps 12 to 13 MB free, so
    isolated changes never trim: a trimmed block costs page faults when it is
    reused (3 ms for 5 MB here), so trimming at every answer would slow them.

    :meth:`after_answer` is meant to be called after each answer is taken in
    (the one it replaced is freed by then). It looks only after answers of
    :data:`LARGE_ANSWER_BYTES` or more, at about 0.05 ms; a trim takes 0.1 to
    0.4 ms. Without glibc's ``mallinfo2`` (before 2.33, musl, macOS) it does
    nothing.
    """

    def __init__(self, limit: int = FREED_BYTES_LIMIT) -> None:
        self.limit = limit
        self.trims = 0
        self._trim_above = limit  # free bytes past which to trim
        self._mallinfo2: Any = None
        self._malloc_trim: Any = None
        try:
            libc = ctypes.CDLL(None)
            mallinfo2, malloc_trim = libc.mallinfo2, libc.malloc_trim
        except (OSError, AttributeError):
            return
        mallinfo2.restype = _MallInfo2
        malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        self._mallinfo2, self._malloc_trim = mallinfo2, malloc_trim

    @property
    def available(self) -> bool:
        return self._mallinfo2 is not None

    def free_bytes(self) -> int:
        """Bytes in free heap blocks, over every malloc arena (0 where unknown)."""
        return int(self._mallinfo2().fordblks) if self.available else 0

    def after_answer(self, size: int) -> bool:
        """After an answer of ``size`` bytes was taken in; True when pages were handed back."""
        if size < LARGE_ANSWER_BYTES or not self.available:
            return False
        if self.free_bytes() <= self._trim_above:
            return False
        self._malloc_trim(0)
        # What the trim left is still free, but no longer resident: count from there.
        self._trim_above = max(self.limit, self.free_bytes() + self.limit)
        self.trims += 1
        return True
