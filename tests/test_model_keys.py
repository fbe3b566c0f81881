"""Model files in the photo keys: weights placed in models/ after a run redo the photos of the stages that load
them (faces detector, matting, restore), and only those stages' keys change (issue #12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from photoarchive.download import model_fingerprint, model_fingerprints
from photoarchive.faces import detector_model_files
from photoarchive.matting import matting_model_files
from photoarchive.restore import restore_model_files
from photoarchive.settings import schema_defaults

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"faces": "detect_faces.py", "matting": "matte.py", "restore": "restore_faces.py"}
CONFIG = {"faces": "faces", "matting": "matting", "restore": "restore"}

# Each stage's script run as a job would run it (a stand-in `snakemake` object, a batch without photos), then
# the key its settings() gives photo "p" (upstream records stand in with fixed keys).
JOB = r"""
import json, runpy, sys
from pathlib import Path
from types import SimpleNamespace
from photoarchive.settings import schema_defaults
from photoarchive.stages import STAGES, photo_key
stage, script, section, work = sys.argv[1:5]
results = Path(work) / "results"
for name in STAGES[stage].upstream:
    path = STAGES[name].record_path(results, "p")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": name}))
params = SimpleNamespace(cfg=schema_defaults(section), models_dir=str(Path(work) / "models"), photos=[],
                         catalogue={"p": {}})
snakemake = SimpleNamespace(log=[str(Path(work) / "logs" / f"{stage}.log")], threads=1, params=params,
                            output=SimpleNamespace(table=str(STAGES[stage].table_path(results, "b0000"))),
                            wildcards=SimpleNamespace(batch="b0000"))
job = runpy.run_path(script, init_globals={"snakemake": snakemake})
print(json.dumps(photo_key(results, stage, "p", job["settings"])))
"""


def job_key(stage: str, work: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_CACHE_DIR": str(REPO / ".numba_cache")}
    out = subprocess.run([sys.executable, "-c", JOB, stage, str(REPO / "scripts" / SCRIPTS[stage]), CONFIG[stage],
                          str(work)], capture_output=True, text=True, env=env, cwd=work, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_weights_placed_after_a_run_change_the_keys_of_the_stages_that_load_them(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    keys = {stage: job_key(stage, tmp_path) for stage in SCRIPTS}
    assert job_key("restore", tmp_path) == keys["restore"]  # no weights, nothing changed: the same key
    weights = {"faces": "detection_Resnet50_Final.pth", "matting": "bshm.onnx", "restore": "GPEN-BFR-512.pth"}
    for stage, name in weights.items():
        (models / name).write_bytes(os.urandom(64))  # not loadable: the key is all this test looks at
        now = {s: job_key(s, tmp_path) for s in SCRIPTS}
        assert now[stage] != keys[stage], stage
        assert {s: k for s, k in now.items() if s != stage} == {s: k for s, k in keys.items() if s != stage}
        keys = now
    # other bytes in the same file: another key again
    keys = {stage: job_key(stage, tmp_path) for stage in SCRIPTS}
    (models / "GPEN-BFR-512.pth").write_bytes(os.urandom(64))
    assert job_key("restore", tmp_path) != keys["restore"]
    assert job_key("faces", tmp_path) == keys["faces"]


def test_model_files_each_stage_would_load(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    faces, matting, restore = (schema_defaults(s) for s in ("faces", "matting", "restore"))
    assert detector_model_files(faces, models) == []  # auto without weights: the packaged detector
    assert detector_model_files({**faces, "detector": "retinaface"}, models) == [models / faces["retinaface_file"]]
    assert detector_model_files({**faces, "detector": "haar"}, models) == []
    assert matting_model_files({**matting, "backend": "classical", "person_prior": "faces"}, models) == []
    assert matting_model_files({**matting, "backend": "bshm"}, models) == [tmp_path / "models" / "bshm.onnx"]
    own = tmp_path / "person.tflite"
    assert matting_model_files({**matting, "backend": "classical", "person_prior": "segmenter",
                                "person_model": str(own)}, models) == [own]
    assert restore_model_files({**restore, "backend": "classical"}, models) == []
    assert restore_model_files({**restore, "backend": "auto", "model": "auto"}, models) == [
        models / "GPEN-BFR-512.pth", models / "GPEN-BFR-1024.pth"]
    assert restore_model_files({**restore, "backend": "gpen", "model": "1024"}, models) == [
        models / "GPEN-BFR-1024.pth"]


def test_model_fingerprint_is_the_sha256_and_follows_the_file(tmp_path):
    import hashlib

    path = tmp_path / "w.pth"
    assert model_fingerprint(path) is None and model_fingerprints([path]) == {}
    assert model_fingerprint(tmp_path) is None  # a folder is no model file
    path.write_bytes(b"one")
    assert model_fingerprint(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two!")  # other size (and time): hashed again
    assert model_fingerprints([path, tmp_path / "absent.pth"]) == {"w.pth": hashlib.sha256(b"two!").hexdigest()}
