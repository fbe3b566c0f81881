"""One typed record per stage: what a stage's JSON file (`stages.STAGES[stage]`, its last file) holds for a
photo. `stages.run_batch` adds "key" and refuses a record with a required field missing or a field not
declared here. Ingest's record is the dataclass `ingest.IngestRecord`.

Lists and dicts inside are described in the module that makes them. A "provenance" field is
`metadata.Provenance.to_dict()`: publish writes it into the published files.
"""

# No `from __future__ import annotations` here: TypedDict must see NotRequired[...] itself.
from typing import Any, NotRequired, TypedDict


class StampRecord(TypedDict):
    bit_depth: int  # 8 or 16, of the working master
    notes: list[str]  # what could not be kept of the scan or the catalogue row


class FacesRecord(TypedDict):
    detector: str
    model_file: str
    model_sha256: str
    fallback_reason: str | None
    pyramid: NotRequired[list[int]]  # retinaface_mobile: the long sides it looked at
    detect_max_side: NotRequired[int]  # the other detectors
    faces: list[dict[str, Any]]  # faces.Face.to_dict()
    skipped: list[dict[str, Any]]  # candidates left out, each with its reason


class RepairRecord(TypedDict):
    enabled: bool
    detector: NotRequired[str]  # learned | classical (absent when repair is off)
    model_file: NotRequired[str]  # the learned detector's weights
    model_sha256: NotRequired[str]
    shares: dict[str, float]  # repaired share of pixels per damage type
    shares_text: str
    filled_share: NotRequired[float]  # absent when repair is off
    faces: NotRequired[int]  # faces protected
    parameters: dict[str, Any]
    provenance: dict[str, Any]


class EnhanceRecord(TypedDict):
    requested: str  # the preset asked for (auto, …)
    preset: str  # the preset applied
    reasons: list[str]
    knobs: dict[str, Any]
    parameters: dict[str, Any]
    measures_before: dict[str, float]
    tone_kept: bool
    provenance: dict[str, Any]


class MattingRecord(TypedDict):
    backend: str
    fallback: bool
    model_file: str | None
    model_sha256: str | None
    model_runtime: str | None
    seconds: float
    person_found: bool
    person_source: str
    person_coverage: float
    person_model: dict[str, Any] | None
    coverage: float  # mean alpha
    notes: list[str]
    provenance: dict[str, Any]


class RestoreRecord(TypedDict):
    backend: str
    size: int
    model_file: str | None
    model_sha256: str | None
    device: NotRequired[str]  # gpen
    fp16: NotRequired[bool]  # gpen
    fallback_reason: NotRequired[str | None]
    controls: NotRequired[dict[str, Any]]
    matte: NotRequired[bool]
    identity_guard: NotRequired[dict[str, Any] | None]
    faces: list[dict[str, Any]]  # per face: status, strength, identity distance, error
    n_faces: NotRequired[int]  # absent when the restoration failed as a whole (see errors)
    n_restored: NotRequired[int]
    n_failed: NotRequired[int]
    identity_flags: NotRequired[list[dict[str, Any]]]
    errors: list[str]
    provenance: dict[str, Any]


class QARecord(TypedDict):
    photo_id: str
    status: str  # processed | review
    reasons: list[str]
    metrics: dict[str, Any]
    embedder: NotRequired[dict[str, Any]]  # the identity embedder, when faces were compared


class PublishRecord(TypedDict):
    status: str  # processed | review | rejected
    files: list[str]  # the published files, relative to results/
