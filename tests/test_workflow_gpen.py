"""The pipeline with GPEN weights present: the network runs, and the manifest and XMP say so.

The weights are a tiny random-initialised GPEN of the official architecture saved under the official
file name, so the real loading and inference code runs on CPU in seconds.
"""

from __future__ import annotations

import csv
import hashlib
import shutil

import pytest
import torch
from workflow import REPO, snakemake

from photoarchive.metadata import SOURCE_MODEL_COMPOSITE, exiftool_session, read_tags
from photoarchive.models.gpen import GPEN

pytestmark = pytest.mark.slow

TINY = {"size": 128, "style_dim": 128, "n_mlp": 4, "channel_multiplier": 1, "narrow": 0.125,
        "blur_kernel": [1, 3, 3, 1], "lr_mlp": 0.01, "isconcat": True}


@pytest.fixture(scope="module")
def gpen_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpen_run")
    scans = root / "scans"
    scans.mkdir()
    shutil.copy(REPO / "demo" / "family" / "Großmutter 1951.jpg", scans / "portrait.jpg")
    shutil.copy(REPO / "demo" / "documents" / "img001.jpg", scans / "page.jpg")
    models = root / "models"
    models.mkdir()
    torch.manual_seed(0)
    weights = models / "GPEN-BFR-512.pth"
    torch.save(GPEN(**TINY).state_dict(), weights)
    work = root / "work"
    work.mkdir()
    snakemake(work, config={"input_dir": str(scans), "models_dir": str(models),
                            "restore": "{backend: gpen, model: 512}"})
    with open(work / "results" / "manifest.csv", encoding="utf-8") as fh:
        rows = {r["source"]: r for r in csv.DictReader(fh)}
    return {"work": work, "rows": rows, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def test_manifest_names_the_model_and_its_hash(gpen_run):
    portrait = gpen_run["rows"]["portrait.jpg"]
    assert portrait["status"] in ("processed", "review")
    assert portrait["restore_backend"] == "gpen"
    assert portrait["restore_model"] == "GPEN-BFR-512.pth"
    assert portrait["restore_model_sha256"] == gpen_run["sha256"]


def test_xmp_marks_a_model_restored_face(gpen_run):
    portrait = gpen_run["rows"]["portrait.jpg"]
    with exiftool_session() as et:
        tags = read_tags(et, gpen_run["work"] / portrait["output"])
    assert tags["XMP-iptcExt:DigitalSourceType"] == SOURCE_MODEL_COMPOSITE
    assert tags["XMP-photoarchive:Backend"] == "gpen"
    assert str(tags["XMP-photoarchive:Fallback"]) == "False"
    assert tags["XMP-photoarchive:ModelSHA256"] == gpen_run["sha256"]
    assert any("GPEN-BFR-512.pth" in h["Parameters"] for h in tags["XMP-xmpMM:History"])


def test_photo_without_faces_is_not_called_model_made(gpen_run):
    page = gpen_run["rows"]["page.jpg"]
    with exiftool_session() as et:
        tags = read_tags(et, gpen_run["work"] / page["output"])
    assert tags["XMP-iptcExt:DigitalSourceType"] != SOURCE_MODEL_COMPOSITE
