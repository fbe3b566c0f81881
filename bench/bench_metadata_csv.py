"""Benchmark reading metadata.csv: the csv-module reader (photoarchive.metadata.read_metadata_csv) vs pandas.

Issue #12 asks for "pandas plus a schema for metadata.csv, unless you measure a reason not to". This measures
both on one synthetic catalogue of --rows rows (default 100,000: about 11 MB; quoted commas and quotes,
accents, a line break inside some descriptions, a few duplicate and empty `file` values), each method in a
fresh subprocess:

  csv      photoarchive.metadata.read_metadata_csv as it is now (csv.DictReader, one pass)
  pandas   pandas.read_csv(dtype=str, keep_default_na=False, na_filter=False, index_col=False, C engine) on
           the same decoded text, `file` keys normalised column-wise, then the same {file: {column: value}}
           dict the pipeline uses (rules/common.smk, rules/package.smk, review.py) and the same schema check
           (metadata._schema_problems). Its problem sentences cannot name physical lines (pandas does not
           report them), so it uses index + 2.
  pandas-python  the same with engine="python" and on_bad_lines cutting extra fields off

Columns: import = the first import of the reader's module (pandas: `import pandas`, cold, in the
subprocess; inside Snakemake pandas is already imported, so there it costs nothing); load = best of
--repeat calls; peak = peak RSS during the calls minus RSS before them; same = the rows equal the csv
reader's. Then a parity table on small damaged catalogues: do the rows and the number of problems agree.
The machine is shared; the load average is printed.

Result (2 shared cores, load 2.1-2.5, 100,000 rows): load csv 1.14 s, pandas C 0.94 s, pandas python 1.91 s;
pandas' cold import 0.5-1.1 s (free inside Snakemake, which imports it). Neither engine keeps every behaviour
of the catalogue table in the README (an unclosed quote, a row with an extra field, a repeated header name,
physical line numbers; the python engine crashes on a short row, NaN despite na_filter=False), so
read_metadata_csv stays on the csv module, with METADATA_SCHEMA checked on top.

    .venv/bin/python bench/bench_metadata_csv.py              # 100,000 rows
    .venv/bin/python bench/bench_metadata_csv.py --rows 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Small damaged catalogues (the README's catalogue table and the hostile-input tests).
PARITY_CASES: dict[str, bytes] = {
    "clean": b'file,date,title\na.jpg,1975,"Beach, ""x"""\nb.jpg,,y\n',
    "row with an extra field": b"file,title\na.jpg,x\nb.jpg,y,EXTRA\nc.jpg,z\n",
    "first row with an extra field": b"file,title\na.jpg,x,EXTRA\nb.jpg,y\n",
    "row with too few fields": b"file,title,date\na.jpg\nb.jpg,y,1975\n",
    "unclosed quote at the end": b'file,title\nscan.jpg,"never closed\n',
    "unclosed quote in the middle": b'file,title\na.jpg,ok\nscan.jpg,"never closed\nc.jpg,z\n',
    "repeated header name": b"file,title,title\na.jpg,x,y\n",
    "blank lines": b"file,title\n\na.jpg,x\n\n\nb.jpg,y\n",
    "line break in a cell, then a duplicate": b'file,title\r\na.jpg,"l1\r\nl2"\r\na.jpg,z\r\n',
    "empty file": b"",
    "binary file": b"\x89PNG\r\n\x1a\n\x00\x00",
    "Windows-1252": "file,title\nsc\xe8ne.jpg,Caf\xe9\n".encode("cp1252"),
}


def write_catalogue(path: Path, rows: int) -> None:
    lines = ["file,date,title,description,people,archive_id"]
    for i in range(rows):
        name = f"box{i % 50:02d}/scan_{i:06d}.jpg" if i % 997 else ("" if i % 2 else f"box00/scan_{i - 1:06d}.jpg")
        note = '"first line\nsecond line"' if i % 101 == 0 else f"Grandma at the seaside, café {i}"
        if "," in note and not note.startswith('"'):
            note = f'"{note}"'
        lines.append(f'{name},19{i % 100:02d}-{1 + i % 12:02d}-{1 + i % 28:02d},"Beach, ""day {i}""",{note},'
                     f"Ann;Bob {i % 7},A{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_with_pandas(path: Path | None, engine: str = "c") -> tuple[dict[str, dict[str, str]], list[str]]:
    """read_metadata_csv's contract on pandas.read_csv (what adopting pandas would look like).

    ``engine="python"`` can keep a row with extra fields (its `on_bad_lines` may be a function that cuts
    them off, as the csv module's reader does); the C engine can only refuse or drop such a row."""
    import pandas as pd

    from photoarchive.metadata import METADATA_COLUMNS, _schema_problems

    if path is None or not Path(path).exists():
        return {}, []
    problems: list[str] = []
    raw_bytes = Path(path).read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = raw_bytes.decode("cp1252", errors="replace")
        problems.append(f"{path}: not UTF-8 (byte {exc.start}); read as Windows-1252 — save it as UTF-8 "
                        "if accented letters look wrong")
    if "\0" in text:
        problems.append(f"{path}: contains NUL bytes (a binary file?); they were removed")
        text = text.replace("\0", "")
    no_file = f"{path}: no 'file' column (expected columns: {', '.join(METADATA_COLUMNS)}); ignored"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)  # index_col=False: extra fields dropped
            options = {"dtype": str, "keep_default_na": False, "na_filter": False, "index_col": False}
            if engine == "python":
                width = len(pd.read_csv(io.StringIO(text), nrows=0, **options).columns)
                options |= {"engine": "python", "on_bad_lines": lambda fields: fields[:width]}
            frame = pd.read_csv(io.StringIO(text), **options)
    except pd.errors.EmptyDataError:
        return {}, [no_file]
    except pd.errors.ParserError as exc:
        return {}, [f"{path}: unreadable ({exc}); catalogue ignored"]
    columns = [str(c).strip() for c in frame.columns]
    if "file" not in columns:
        return {}, [no_file]
    missing = [c for c in METADATA_COLUMNS if c not in columns]
    if missing:
        problems.append(f"{path}: columns missing, left empty: {', '.join(missing)}")
    keys = frame.iloc[:, columns.index("file")].str.strip().str.replace("\\", "/", regex=False).str.removeprefix("./")
    empty, repeated = (keys == "").tolist(), (keys.duplicated() & (keys != "")).tolist()
    rows: dict[str, dict[str, str]] = {}
    checked: list[tuple[int, dict[str, str]]] = []
    values = zip(*(frame.iloc[:, i].tolist() for i in range(len(columns))), strict=True)
    for index, (key, no_key, again, cells) in enumerate(zip(keys.tolist(), empty, repeated, values, strict=True)):
        if no_key:
            problems.append(f"{path}:{index + 2}: empty 'file' value; row ignored")
        elif again:
            problems.append(f"{path}:{index + 2}: second row for {key}; the first one is used")
        else:
            rows[key] = dict(zip(columns, cells, strict=True))
            checked.append((index + 2, rows[key]))
    return rows, problems + _schema_problems(path, columns, checked)  # the same schema check as the csv reader


def _reader(method: str):
    if method == "csv":
        from photoarchive.metadata import read_metadata_csv

        return read_metadata_csv
    return functools.partial(read_with_pandas, engine=method.removeprefix("pandas-") if "-" in method else "c")


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def measure(method: str, path: Path, repeat: int) -> dict:
    """Runs in the subprocess: import, then `repeat` loads."""
    start = time.perf_counter()
    if method.startswith("pandas"):
        import pandas  # noqa: F401
    reader = _reader(method)
    imported = time.perf_counter() - start
    before = _rss_kb()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        rows, problems = reader(path)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:12]
    return {"method": method, "import_s": imported, "load_s": min(times), "peak_mb": peak / 1024,
            "rows": len(rows), "problems": len(problems), "digest": digest}


def parity() -> list[tuple[str, ...]]:
    from photoarchive.metadata import read_metadata_csv

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metadata.csv"
        for name, data in PARITY_CASES.items():
            path.write_bytes(data)
            old_rows, old_problems = read_metadata_csv(path)
            verdicts = []
            for engine in ("c", "python"):
                try:
                    new_rows, new_problems = read_with_pandas(path, engine)
                except Exception as exc:  # noqa: BLE001 - the table reports it
                    verdicts.append(f"raises {exc!r}")
                    continue
                if new_rows == old_rows and new_problems == old_problems:
                    verdicts.append("same")
                    continue
                changed = [p.replace(str(path), "…") for p in new_problems if p not in old_problems]
                verdicts.append(f"{'rows DIFFER: ' if new_rows != old_rows else ''}{len(new_rows)} rows "
                                f"{sorted(new_rows)}{f'; problems differ: {changed}' if changed else ''}")
            out.append((name, f"{len(old_rows)} rows {sorted(old_rows)}, {len(old_problems)} problems", *verdicts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "CSV"), help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]), args.repeat)))
        return
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (2 shared cores)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "metadata.csv"
        write_catalogue(path, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB\n")
        print(f"| method | import s | load s (best of {args.repeat}) | peak MB | rows | problems | digest |")
        print("|---|---|---|---|---|---|---|")
        for method in ("csv", "pandas", "pandas-python"):
            proc = subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--one", method, str(path)],
                                  capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"| {r['method']} | {r['import_s']:.3f} | {r['load_s']:.3f} | {r['peak_mb']:.0f} | {r['rows']:,} "
                  f"| {r['problems']:,} | {r['digest']} |")
    print("\n| damaged catalogue | csv module (today) | pandas, C engine | pandas, python engine |")
    print("|---|---|---|---|")
    for cells in parity():
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
