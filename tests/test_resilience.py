"""Interrupted runs and faults (issue 5): killed runs resume to the same pixels, a crashing photo does
not hold back the others, a full disk or read-only output folder fails clearly, inputs never change,
and nothing touches the network.

One small archive (a face photo and three tiny scans, batches of about two) goes through:
  R   an uninterrupted reference run, offline;
  G1  a run with --keep-going in which photo `b.jpg` crashes in enhance (config debug.fail_photos): its batch
      mates and everyone else finish, the run fails at its end;
  G2  a plain retry, SIGKILLed in the middle of face restoration; then --unlock;
  G3  --rerun-incomplete, SIGKILLed while publishing; then --unlock;
  G4  --rerun-incomplete to the end, which must match R pixel for pixel.
A watcher looks at results/processed and results/review all along G2-G4.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hostile_corpus import (
    _jpeg,
    _png,
    can_unshare,
    network_guard,
    picture,
    workflow_command,
    workflow_env,
    write_config,
)
from PIL import Image
from workflow import snapshot

from photoarchive import metadata as md
from photoarchive.ingest import photo_id
from photoarchive.manifest import read_manifest

POISONED = "b.jpg"
OTHERS = ("a_face.jpg", "c.png", "d.jpg")
SETTINGS = {"scheduling": {"batch_size": 2}}
# imageio.atomic_output's names, and exiftool's own temporary file while it edits one of them
TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part\.[a-z]+(_exiftool_tmp)?$")


def _make_inputs(folder: Path) -> None:
    from skimage import data

    folder.mkdir(parents=True)
    face = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    Image.fromarray(face).save(folder / OTHERS[0], "JPEG", quality=90)
    (folder / POISONED).write_bytes(_jpeg(picture(30)))
    (folder / "c.png").write_bytes(_png(Image.fromarray((picture(31) * 255).astype(np.uint8))))
    (folder / "d.jpg").write_bytes(_jpeg(picture(32), 6))


def _run(work: Path, config: Path, *args: str, env: dict, prefix: tuple[str, ...] = (),
         kill_when=None, timeout: float = 600) -> SimpleNamespace:
    """Run the workflow; with `kill_when`, SIGKILL its whole process group once that returns True."""
    log = work.parent / f"{work.name}-{time.monotonic_ns()}.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(workflow_command(work, config, *args, prefix=prefix), stdout=fh,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        killed, start = False, time.monotonic()
        while proc.poll() is None:
            if kill_when is not None and kill_when():
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            if time.monotonic() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError(f"snakemake {args} ran over {timeout} s; see {log}")
            time.sleep(0.01)
        rc = proc.wait()
    return SimpleNamespace(rc=rc, killed=killed, output=log.read_text(encoding="utf-8", errors="replace"))


class Watcher(threading.Thread):
    """Records every file that appears under results/processed and results/review, and its size then."""

    def __init__(self, results: Path):
        super().__init__(daemon=True)
        self.results, self.first_size, self.hidden, self.stop = results, {}, set(), threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for status in ("processed", "review"):
                for path in (self.results / status).rglob("*"):
                    try:
                        size = path.stat().st_size
                    except FileNotFoundError:  # a temporary file renamed away meanwhile
                        continue
                    if path.name.startswith("."):
                        self.hidden.add(path.name)
                    elif path.is_file():
                        self.first_size.setdefault(path, size)
            time.sleep(0.005)


def _published(work: Path) -> dict[str, Path]:
    results = work / "results"
    return {p.relative_to(results).as_posix(): p for status in ("processed", "review")
            for p in (results / status).rglob("*") if p.is_file() and not p.name.startswith(".")}


def _tags_without_times(et, path: Path) -> dict:
    tags = {k: v for k, v in md.read_tags(et, path).items()
            if not k.startswith(("System:", "SourceFile", "ExifTool:"))}
    history = tags.get("XMP-xmpMM:History")
    if history:
        tags["XMP-xmpMM:History"] = [{k: v for k, v in h.items() if k != "When"} for h in history]
    return tags


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("resilience")
    scans = root / "scans"
    _make_inputs(scans)
    guard = network_guard(root / "guard")
    env = workflow_env(guard)
    ids = {name: photo_id(name) for name in (POISONED, *OTHERS)}
    return SimpleNamespace(root=root, scans=scans, before=snapshot(scans), env=env, ids=ids,
                           netlog=Path(guard["PHOTOARCHIVE_NETLOG"]),
                           offline=("unshare", "-n") if can_unshare("-n") else ())


@pytest.fixture(scope="module")
def reference(archive):
    """R: the uninterrupted run, offline."""
    work = archive.root / "reference"
    config = write_config(work / "config.yaml", {**SETTINGS, "input_dir": str(archive.scans)})
    result = _run(work, config, env=archive.env, prefix=archive.offline)
    assert result.rc == 0, result.output[-5000:]
    return SimpleNamespace(work=work, published=_published(work), after=snapshot(archive.scans))


@pytest.fixture(scope="module")
def crashed(archive):
    """G1: --keep-going with one photo crashing its enhance job."""
    work = archive.root / "crashed"
    config = write_config(work / "config.yaml", {**SETTINGS, "input_dir": str(archive.scans),
                                                 "debug": {"fail_photos": [archive.ids[POISONED]]}})
    result = _run(work, config, "--keep-going", env=archive.env)
    rows = {r["source"]: r for r in read_manifest(work / "results" / "manifest.csv")}
    published = {k: (p.stat().st_mtime_ns, p.read_bytes()) for k, p in _published(work).items()}
    return SimpleNamespace(work=work, result=result, rows=rows, published=published)


@pytest.fixture(scope="module")
def resumed(archive, crashed):
    """G2-G4 in the same work folder: a plain retry killed in face restoration, a resume killed while
    publishing, a resume to the end; the watcher looks on."""
    work = crashed.work
    results = work / "results"
    config = write_config(work / "config.yaml", {**SETTINGS, "input_dir": str(archive.scans)})  # hook gone
    from workflow import planned_jobs

    plan = planned_jobs(work, "--configfile", str(config))
    watcher = Watcher(results)
    watcher.start()
    poisoned = archive.ids[POISONED]

    def restoring() -> bool:  # the restore job has begun the retried photo (its log says so) and not finished it
        return (not (results / "restore" / f"{poisoned}.json").exists()
                and any(f"{poisoned}: restoring faces" in log.read_text(errors="replace")
                        for log in (work / "logs" / "restore").glob("*.log")))

    # killed while the retried photo's faces are being restored (its restored image not yet in place)
    g2 = _run(work, config, env=archive.env, kill_when=restoring)
    in_restore = restoring()
    after_kill = snapshot(archive.scans)
    unlock = _run(work, config, "--unlock", env=archive.env)
    before_publish, hidden_before = set(_published(work)), set(watcher.hidden)
    g3 = _run(work, config, "--rerun-incomplete", env=archive.env,  # killed as soon as publishing starts
              kill_when=lambda: len(watcher.first_size) > len(before_publish) or watcher.hidden > hidden_before)
    published_at_kill = set(_published(work))
    unlock2 = _run(work, config, "--unlock", env=archive.env)
    g4 = _run(work, config, "--rerun-incomplete", env=archive.env)
    watcher.stop.set()
    watcher.join()
    return SimpleNamespace(work=work, plan=plan, g2=g2, g3=g3, g4=g4, unlock=(unlock, unlock2),
                           in_restore=in_restore, after_kill=after_kill, watcher=watcher,
                           published_at_kill=published_at_kill, before_publish=before_publish)


# ------------------------------------------------------------------------------------------ offline


@pytest.mark.slow
def test_reference_run_made_no_network_access(archive, reference):
    assert reference.published
    assert not archive.netlog.exists() or archive.netlog.read_text() == ""


def test_network_guard_is_live(tmp_path):
    """The control: the same environment does refuse and log a connection."""
    guard = network_guard(tmp_path)
    probe = "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\nexcept OSError:\n    pass"
    subprocess.run([sys.executable, "-c", probe], env=workflow_env(guard), check=True)
    assert "192.0.2.1" in Path(guard["PHOTOARCHIVE_NETLOG"]).read_text()


# ------------------------------------------------------------------------------------------ --keep-going


@pytest.mark.slow
def test_crash_fails_the_run_but_not_the_other_photos(archive, crashed):
    assert crashed.result.rc != 0
    assert "1 photo(s) failed in a stage and will be retried by the next run" in crashed.result.output
    rows = crashed.rows
    for name in OTHERS:  # the poisoned photo's batch mate among them: nothing waits for it
        assert rows[name]["status"] in ("processed", "review"), rows[name]
        assert (crashed.work / rows[name]["output"]).is_file()
    bad = rows[POISONED]
    assert bad["status"] == "failed" and bad["reason"].startswith("stopped in enhance (RuntimeError: simulated crash")
    assert "re-run snakemake to retry this photo" in bad["reason"]
    assert "simulated crash" in (crashed.work / bad["log"]).read_text()
    failed_txt = (crashed.work / "results" / "failed.txt").read_text(encoding="utf-8")
    assert POISONED in failed_txt and not any(name in failed_txt for name in OTHERS)
    # the poisoned photo shares its batch with another photo (batches of about two): that one finished
    batches = {}
    for line in (crashed.work / "results" / "dedup" / "dedup.tsv").read_text().splitlines()[1:]:
        fields = line.split("\t")
        batches.setdefault(fields[4], []).append(fields[0])
    assert any(archive.ids[POISONED] in members and len(members) > 1 for members in batches.values()), batches


@pytest.mark.slow
def test_retry_plans_only_what_did_not_finish(crashed, resumed):
    plan = resumed.plan
    assert not {"ingest", "dedup", "stamp"} & set(plan), plan
    # faces are found (and damage repaired) before enhance: those finished; the chain from enhance on runs
    # again for the poisoned photo's batch only (its batch mate is kept, photo by photo)
    assert "detect_faces" not in plan and "repair" not in plan, plan
    assert plan.get("enhance") == 1 and plan.get("matte") == 1, plan
    assert plan.get("restore_faces") == 1 and plan.get("qa") == 1 and plan.get("publish") == 1, plan


@pytest.mark.slow
def test_retry_leaves_the_finished_photos_alone(crashed, resumed):
    for name, (mtime, data) in crashed.published.items():
        path = resumed.work / "results" / name
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data, name


# ------------------------------------------------------------------------------------------ killed runs


@pytest.mark.slow
def test_kills_landed_in_restore_and_in_publish(resumed):
    assert resumed.g2.killed and resumed.in_restore  # the retried photo was being restored
    assert resumed.g3.killed and resumed.published_at_kill >= resumed.before_publish
    assert all(u.rc == 0 for u in resumed.unlock)
    assert resumed.g4.rc == 0, resumed.g4.output[-5000:]


@pytest.mark.slow
def test_no_partial_file_ever_visible(resumed):
    results = resumed.work / "results"
    for path, size in resumed.watcher.first_size.items():
        assert path.stat().st_size == size, f"{path} grew after it appeared: it was visible half-written"
    assert all(TEMPORARY.match(name) for name in resumed.watcher.hidden), resumed.watcher.hidden
    assert not [p for p in results.rglob(".*") if ".part" in p.name]  # no temporary file left behind


@pytest.mark.slow
def test_resumed_images_are_pixel_identical_to_the_uninterrupted_run(reference, resumed):
    published = _published(resumed.work)
    assert set(published) == set(reference.published)
    for name, path in reference.published.items():
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(published[name]), cv2.IMREAD_UNCHANGED)
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), name


@pytest.mark.slow
def test_resumed_metadata_equal_but_for_timestamps(reference, resumed):
    published = _published(resumed.work)
    with md.exiftool_session() as et:
        for name, path in reference.published.items():
            assert _tags_without_times(et, published[name]) == _tags_without_times(et, path), name
    ref_rows = read_manifest(reference.work / "results" / "manifest.csv")
    rows = read_manifest(resumed.work / "results" / "manifest.csv")
    assert rows == ref_rows


@pytest.mark.slow
def test_inputs_are_never_modified(archive, reference, resumed):
    assert reference.after == archive.before
    assert resumed.after_kill == archive.before
    assert snapshot(archive.scans) == archive.before


# ------------------------------------------------------------------------------------------ full / read-only disk


def _noise_png(path: Path, size: tuple[int, int] = (900, 1200)) -> None:
    rng = np.random.default_rng(5)
    cv2.imwrite(str(path), rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def _one_scan_run(root: Path, write_scan) -> tuple[Path, Path, Path]:
    """(scans, work, config) of a one-scan archive under root; write_scan(scans) writes the scan."""
    scans = root / "scans"
    scans.mkdir(parents=True)
    write_scan(scans)
    work = root / "work"
    return scans, work, write_config(work / "config.yaml", {"input_dir": str(scans)})


@pytest.mark.skipif(not can_unshare("-m"), reason="needs a private mount namespace (unshare -m) for a small tmpfs")
@pytest.mark.slow
def test_full_disk_fails_clearly_and_leaves_nothing_half_written(archive):
    root = archive.root / "full"
    scans, work, config = _one_scan_run(root, lambda scans: _noise_png(scans / "noise.png"))  # ~3 MB PNG: > 1 MB
    stamp = work / "results" / "stamp"
    stamp.mkdir(parents=True)
    target = "results/stamp/batches/b0000.json"
    listing = root / "listing.txt"
    before = snapshot(scans)
    inner = " ".join(f"'{a}'" for a in workflow_command(work, config, target))
    script = (f"mount -t tmpfs -o size=1m tmpfs '{stamp}' && "
              f"{{ {inner}; rc=$?; find '{stamp}' -type f > '{listing}'; exit $rc; }}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                            env=archive.env, timeout=600)
    assert result.returncode != 0
    log = (work / "logs" / "stamp" / "b0000.log").read_text()  # a full disk fails the job, not just the photo
    assert "the disk is full; free some space, then re-run snakemake" in log, log[-3000:]
    assert listing.read_text() == ""  # neither the image nor a temporary file was left on the full disk
    assert snapshot(scans) == before
    again = subprocess.run(workflow_command(work, config, target), capture_output=True, text=True, env=archive.env)
    assert again.returncode == 0, again.stderr[-3000:]  # with space again, the same command finishes
    assert (work / target).is_file() and (stamp / f"{photo_id('noise.png')}.png").is_file()


@pytest.mark.skipif(not can_unshare("-m"), reason="needs a private mount namespace (unshare -m) for a read-only mount")
@pytest.mark.slow
def test_read_only_output_folder_fails_clearly(archive):
    root = archive.root / "readonly"
    scans, work, config = _one_scan_run(root, lambda scans: (scans / "a.jpg").write_bytes(_jpeg(picture(33))))
    before = snapshot(scans)
    results = work / "results"
    results.mkdir(parents=True)
    inner = " ".join(f"'{a}'" for a in workflow_command(work, config, "ingest_only"))
    code = "import sys; from photoarchive.imageio import write_atomic; write_atomic(sys.argv[1], bytes(1))"
    probe = f"{sys.executable} -c '{code}'"
    script = (f"mount --bind '{results}' '{results}' && mount -o remount,bind,ro '{results}' && "
              f"{{ {probe} '{results}/x.json' 2> '{root}/probe.txt'; {inner}; }}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                            env=archive.env, timeout=600)
    assert result.returncode != 0
    # Snakemake itself stops before any job, naming the folder (a job that meets a read-only or full disk
    # later says so in its log: see the full-disk test and imageio.OutputWriteError)
    assert re.search(r"Failed to create output directory results/ingest/batches\.\s+OSError: \[Errno 30\] Read-only "
                     r"file system", result.stdout + result.stderr), (result.stdout + result.stderr)[-3000:]
    # what a job that meets a read-only folder says (the probe writes like every job does)
    assert "cannot write " in (root / "probe.txt").read_text()
    assert "is on a read-only file system; run in a writable folder" in (root / "probe.txt").read_text()
    assert not [p for p in results.rglob("*") if p.is_file()]
    assert snapshot(scans) == before


# ------------------------------------------------------------------------------------------ atomic writes


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from photoarchive.imageio import atomic_directory, atomic_output
target = Path(sys.argv[2])
if sys.argv[1] == "file":
    with atomic_output(target) as tmp, open(tmp, "wb") as fh:
        for _ in range(1000):
            fh.write(b"x" * 4096); fh.flush(); time.sleep(0.01)
else:
    with atomic_directory(target) as folder:
        for i in range(1000):
            (folder / f"{i}.png").write_bytes(b"x"); time.sleep(0.01)
"""


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_killed_writer_leaves_no_visible_partial_output(tmp_path, kind):
    from photoarchive.imageio import atomic_directory, write_atomic

    target = tmp_path / ("photo_restored.jpg" if kind == "file" else "b0000")
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, kind, str(target)])
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".") and (p.is_dir() and any(p.iterdir()) or p.is_file() and p.stat().st_size)
                  for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    left = [p.name for p in tmp_path.iterdir()]
    assert target.name not in left and len(left) == 1 and left[0].startswith(f".{target.stem}.")
    if kind == "file":
        (tmp_path / f"{left[0]}_exiftool_tmp").write_bytes(b"half")  # exiftool killed while editing it
        write_atomic(target, b"complete")  # the next write of the same file clears the leftovers
        assert target.read_bytes() == b"complete"
    else:
        with atomic_directory(target) as folder:
            (folder / "a.png").write_bytes(b"complete")
        assert [p.name for p in target.iterdir()] == ["a.png"]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
