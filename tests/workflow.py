"""Helpers for the tests that run the whole Snakemake workflow in a scratch folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mtime_ns)} of every file below `folder`."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[path.relative_to(folder).as_posix()] = (
                hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def copy_demo(dest: Path) -> Path:
    """A private copy of the bundled demo archive (scans only)."""
    shutil.copytree(REPO / "demo", dest, ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    return dest


def snakemake(workdir: Path, *args: str, config: dict[str, str] | None = None, check: bool = True,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the repository's workflow with `workdir` as its working directory."""
    # Options that take several values (--resources, --configfile) come before --cores, so a target in
    # `args` is never read as one of their values; `args` come after the repository's config file.
    cmd = [str(SNAKEMAKE), "--resources", "gpu=1", "--snakefile", str(REPO / "Snakefile"), "--configfile",
           str(REPO / "config.yaml"), "--directory", str(workdir), "--cores", "2", *args]
    if config:
        cmd += ["--config", *(f"{k}={v}" for k, v in config.items())]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(REPO / ".numba_cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def planned_jobs(workdir: Path, *args: str, config: dict[str, str] | None = None) -> dict[str, int]:
    """{rule: count} of the jobs a dry run would execute."""
    result = snakemake(workdir, "--dry-run", "--quiet", "rules", *args, config=config)
    counts: dict[str, int] = {}
    in_table = False
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
        elif in_table and parts and parts[0] == "total":
            break
    return counts
