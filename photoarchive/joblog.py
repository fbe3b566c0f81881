"""Logging and thread limits for one pipeline job (the caller passes the log path and thread count)."""

from __future__ import annotations

import atexit
import logging
import sys
import time
from pathlib import Path

import cv2
import psutil


def start_job(log_path: str | Path, threads: int = 1) -> logging.Logger:
    """Send log records (and uncaught exceptions) to `log_path`; cap OpenCV at `threads`."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    previous_hook = sys.excepthook

    def log_uncaught(kind, value, tb):
        logging.getLogger("photoarchive").critical("job failed", exc_info=(kind, value, tb))
        previous_hook(kind, value, tb)

    sys.excepthook = log_uncaught
    cv2.setNumThreads(threads)
    job_log = logging.getLogger("photoarchive")
    # Startup = process start → here (interpreter, imports): the per-job overhead bench/ reports.
    started = psutil.Process().create_time()
    ready = time.time()
    job_log.info("job startup %.3f s (interpreter and imports)", ready - started)
    atexit.register(lambda: job_log.info("job work %.3f s", time.time() - ready))
    return job_log


def retain_freed_memory() -> None:
    """Ask glibc to keep freed memory in the process instead of returning it to the kernel.

    A GPEN forward allocates about 2 GB of fresh tensors; with this, later forwards reuse those pages
    instead of having the kernel zero new ones (512 px face on 2 CPU cores: 4.3 s → 2.8 s, for a few
    hundred MB more resident memory; bench/bench_gpen.py "+malloc"). No effect outside glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve large blocks from the heap, not fresh mmaps
    libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD: do not give the heap's top back to the kernel
