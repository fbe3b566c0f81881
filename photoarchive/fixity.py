"""Re-check a bag's checksums and name what changed: `python -m photoarchive.fixity results/package/<bag>`.

Uses the Library of Congress `bagit` library: first completeness (files missing from, or added to,
the payload, named), then its full validator: every checksum of every manifest, payload and tag
files (files whose bytes changed, named).
`--fast` checks only the Payload-Oxum (file count and total size): quick, but blind to a changed
byte. Exit status 0 when the bag is valid, 1 when something changed, 2 when it is not a bag.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import bagit


def check_bag(path: Path, fast: bool = False, processes: int = 1) -> list[str]:
    """Problems found in the bag at `path`, one sentence each naming the file; [] when it is valid."""
    try:
        bag = bagit.Bag(str(path))
    except bagit.BagError as exc:
        return [f"{path}: not a readable bag ({exc})"]
    if fast:
        try:
            bag.validate(fast=True)
        except bagit.BagValidationError as exc:
            return [str(exc)]
        return []
    # Completeness first (bagit's own Payload-Oxum check would stop at "expected N files" without names)
    only_in_manifest, only_on_disk = bag.compare_manifests_with_fs()
    problems = [f"missing: {p}" for p in sorted(only_in_manifest)]
    problems += [f"not in the manifest: {p}" for p in sorted(only_on_disk)]
    if problems:
        return problems
    try:
        bag.validate(processes=processes)
    except bagit.BagValidationError as exc:
        problems += [_describe(d) for d in exc.details] or [str(exc)]
    return problems


def _describe(detail: object) -> str:
    if isinstance(detail, bagit.ChecksumMismatch):
        return (f"changed: {detail.path} ({detail.algorithm} expected {detail.expected}, "
                f"found {detail.found})")
    if isinstance(detail, bagit.FileMissing):
        return f"missing: {detail.path}"
    if isinstance(detail, bagit.UnexpectedFile):
        return f"not in the manifest: {detail.path}"
    return str(detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m photoarchive.fixity", description=__doc__.splitlines()[0])
    parser.add_argument("bags", nargs="+", type=Path, help="bag folders, e.g. results/package/photoarchive")
    parser.add_argument("--fast", action="store_true", help="Payload-Oxum only (count and size)")
    parser.add_argument("--processes", type=int, default=1, help="processes for hashing")
    args = parser.parse_args(argv)
    logging.getLogger("bagit").setLevel(logging.WARNING)
    status = 0
    for path in args.bags:
        if not (path / "bagit.txt").is_file():
            print(f"{path}: not a bag (no bagit.txt)", file=sys.stderr)
            status = max(status, 2)
            continue
        problems = check_bag(path, fast=args.fast, processes=args.processes)
        for line in problems:
            print(f"{path}: {line}")
        if problems:
            status = max(status, 1)
        else:
            print(f"{path}: valid ({'fast: Payload-Oxum' if args.fast else 'every checksum'})")
    return status


if __name__ == "__main__":
    sys.exit(main())
