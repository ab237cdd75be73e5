"""Limits that keep one bad file or one runaway trial from taking the whole machine down.

- File size: a table file may be at most ``AUTOML_MAX_FILE_MB`` MB (default 1024, the studio's
  ``server.maxUploadSize``), checked before a byte is read.
- Memory to read: before a file is parsed, the memory it will take is estimated from its size or
  its own metadata (Parquet row counts, the unpacked size of an Excel workbook). More than half of
  the memory available (``/proc/meminfo`` MemAvailable, or ``AUTOML_MEMORY_LIMIT_MB`` when set) is
  refused with a message: a compressed bomb or a table too large for this machine never expands.
- Columns: at most :data:`MAX_COLUMNS`.
- Trial workers: each worker process gets an address-space limit (``RLIMIT_AS``), by default 90 % of
  the machine's memory shared between the workers, or ``AUTOML_WORKER_MEMORY_MB`` (0 = no limit). A
  trial that allocates past it gets a ``MemoryError`` (or its process dies) and fails alone. Workers
  also run at niceness +5, so the studio's pages stay responsive while trials fill the cores.
  Near the cap a failed allocation does not always raise: LightGBM's aligned buffers are not checked
  and a stack that cannot grow faults, so the process dies with SIGSEGV. Two guards keep a priced
  trial away from it: each worker holds at most :data:`WORKER_ARENAS` glibc malloc arenas (each
  reserves 64 MB of address space per thread that allocates), and :func:`address_space_left` keeps
  :data:`WORKER_RESERVE` of the cap out of what a trial may plan to use.
"""
from __future__ import annotations

import os

from ..errors import AutoMLInputError

MAX_COLUMNS = 20_000
DEFAULT_MAX_FILE_MB = 1024
READ_SHARE = 0.5                 # of the available memory, for reading one table
WORKER_SHARE = 0.9               # of the machine's memory, split between the trial workers
# Bytes in memory per byte of file, by format: raw bytes held while parsing plus the frame
# (text: numbers and short strings; JSON: Python dicts per record; Excel: openpyxl cell objects).
TEXT_FACTOR = 3.0
JSON_FACTOR = 8.0
EXCEL_FACTOR = 5.0
_MB = 2**20
#: glibc malloc arenas a trial worker may hold (its default is 8 per core): every thread that allocates may
#: otherwise get its own, each reserving 64 MB of address space that counts against the cap but holds little.
WORKER_ARENAS = 2
#: Address space under the cap no trial plans to use: thread stacks, the arenas above, the interpreter's
#: own growth. A 1,000-class LightGBM trial priced to fit the whole room died with SIGSEGV under a 1,000 and
#: a 1,300 MB room at 2 threads (bench/results/memory-cap-*.md).
WORKER_RESERVE = 256 * _MB


def max_file_bytes() -> int:
    """The largest table file accepted (``AUTOML_MAX_FILE_MB``, default 1024 MB)."""
    return int(_env_mb("AUTOML_MAX_FILE_MB", DEFAULT_MAX_FILE_MB) * _MB)


def check_file_size(n_bytes: int, label: str) -> None:
    """Refuse a file larger than :func:`max_file_bytes`, before it is read."""
    limit = max_file_bytes()
    if n_bytes > limit:
        raise AutoMLInputError(f"'{label}' is {size_text(n_bytes)}, more than the {size_text(limit)} limit for a table file",
                               "use a sample of the rows or save it as Parquet (smaller), "
                               "or raise AUTOML_MAX_FILE_MB")


def available_memory() -> int:
    """Bytes of memory this process may count on: ``AUTOML_MEMORY_LIMIT_MB``, else MemAvailable."""
    if os.environ.get("AUTOML_MEMORY_LIMIT_MB"):
        return int(_env_mb("AUTOML_MEMORY_LIMIT_MB", 0) * _MB)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return total_memory()


def total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024 * _MB


def check_memory(estimate: float, label: str, how: str) -> None:
    """Refuse to read a table whose estimated size in memory exceeds READ_SHARE of what is available.

    Args:
        estimate: bytes the table is expected to take once read.
        label: the file name, for the message.
        how: what the estimate is based on, in words (shown in the message).
    """
    room = available_memory() * READ_SHARE
    if estimate > room:
        raise AutoMLInputError(
            f"'{label}' is too large for this machine's memory: reading it would take about {size_text(estimate)} "
            f"({how}), and only {size_text(room)} can be spared",
            "use a sample of the rows or fewer columns, or run on a machine with more memory")


def check_columns(n_columns: int, label: str) -> None:
    if n_columns > MAX_COLUMNS:
        raise AutoMLInputError(f"'{label}' has {n_columns:,} columns, more than the {MAX_COLUMNS:,} supported",
                               "keep the columns that matter (or check the delimiter: one long line is read as columns)")


def worker_memory_limit(n_workers: int) -> int | None:
    """Bytes of address space per trial worker, or None for no limit (``AUTOML_WORKER_MEMORY_MB=0``)."""
    mb = _env_mb("AUTOML_WORKER_MEMORY_MB", -1)
    if mb == 0:
        return None
    if mb > 0:
        return int(mb * _MB)
    # Address space counts reserved-but-unused memory too (thread stacks, allocator arenas): never
    # less than 4 GB, which a worker with the ML libraries loaded stays well inside.
    return max(4096 * _MB, int(total_memory() * WORKER_SHARE / max(n_workers, 1)))


#: Trial workers run a little below normal priority: on a busy machine the process that serves the
#: pages (the studio) and records results gets the CPU first; on an idle one nothing changes.
WORKER_NICENESS = 5


#: Why this worker process runs without the memory cap it was meant to have ("" when capped or uncapped
#: by choice); set by :func:`prepare_worker`, read by the search through :func:`worker_cap_problem`.
_CAP_PROBLEM = ""


def prepare_worker(n_bytes: int | None) -> None:
    """A trial worker's initializer: lower its priority a notch and cap its memory (RLIMIT_AS)."""
    global _CAP_PROBLEM
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):
        pass
    _CAP_PROBLEM = limit_this_process(n_bytes)


def limit_malloc_arenas(n_arenas: int) -> bool:
    """Cap glibc's malloc arenas for this process (``mallopt(M_ARENA_MAX)``, as MALLOC_ARENA_MAX would at
    start-up, which a worker forked from a warm server is past); False where there is no glibc."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-8, int(n_arenas)))  # -8: M_ARENA_MAX in glibc's malloc.h
    except (OSError, AttributeError):
        return False


def worker_cap_problem() -> str:
    """In a trial worker: why its memory cap could not be set, or "" (submitted to a worker by the pool)."""
    return _CAP_PROBLEM


def limit_this_process(n_bytes: int | None) -> str:
    """Set RLIMIT_AS for the calling process; returns "" or, when it could not be set, why (in words).

    Without the cap a runaway trial takes the machine's memory instead of failing alone, so a failure
    is reported (once per run, as a message event), not swallowed.
    """
    if not n_bytes:
        return ""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = n_bytes if hard == resource.RLIM_INFINITY else min(n_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except ImportError:
        return "this system has no per-process memory limits (no 'resource' module)"
    except (ValueError, OSError, OverflowError) as exc:  # OverflowError: a limit past what the C type holds
        return f"setting the address-space limit of {size_text(n_bytes)} failed ({type(exc).__name__}: {exc})"
    limit_malloc_arenas(WORKER_ARENAS)  # under a cap, idle arena reservations are memory a trial cannot use
    return ""


def address_space_left() -> int | None:
    """Bytes this process may plan to map under its RLIMIT_AS cap (the cap less its current VmSize and less
    :data:`WORKER_RESERVE`), or None when it has no cap (or the system cannot tell): what a trial worker has
    left for the model it fits."""
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration, ValueError):
        return None
    return max(0, soft - size - WORKER_RESERVE)


def memory_cap_message(problem: str) -> str:
    """The run's one message when trial workers have no memory cap."""
    return (f"Trial workers run without a memory cap: {problem}. A trial that runs out of memory can slow or "
            "stop this whole machine instead of failing alone; set AUTOML_WORKER_MEMORY_MB=0 to silence this "
            "on purpose, or run where process limits are allowed")


def size_text(n_bytes: float) -> str:
    """1536 -> '1.5 KB'; 3 * 2**30 -> '3.0 GB'."""
    for unit, scale in (("GB", 2**30), ("MB", _MB), ("KB", 1024)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def _env_mb(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise AutoMLInputError(f"the setting {name}={text!r} is not a number of megabytes",
                               f"set {name} to a number such as 1024") from None
    if value < 0:
        raise AutoMLInputError(f"the setting {name}={text!r} is negative", f"set {name} to 0 or more")
    return value
