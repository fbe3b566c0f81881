"""The SLURM profile and the cluster test's helpers, checked without a cluster (fast).

The real run on a one-node SLURM cluster is tests/cluster/run_pipeline_on_slurm.sh (called by CI).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake.profiles import ProfileConfigFileParser

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
CLUSTER = REPO / "tests" / "cluster"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def load_profile(env: dict[str, str] | None = None) -> dict:
    """The profile as Snakemake reads it: {option: value or list of 'key=value' strings}."""
    saved = dict(os.environ)
    try:
        for key in ("PHOTOARCHIVE_SLURM_PARTITION", "PHOTOARCHIVE_SLURM_GPU_PARTITION", "PHOTOARCHIVE_SLURM_ACCOUNT"):
            os.environ.pop(key, None)
        os.environ.update(env or {})
        with PROFILE.open() as fh:
            return dict(ProfileConfigFileParser().parse(fh))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def pairs(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def test_profile_uses_the_slurm_executor_with_squeue_status_checks():
    profile = load_profile()
    assert profile["executor"] == "slurm"
    # Without an accounting database sacct loses finished jobs and the run never ends.
    assert profile["slurm-status-command"] == "squeue"
    assert "sacct" not in PROFILE.read_text().replace("sacct is the plugin's default", "")
    assert int(profile["jobs"]) >= 10
    assert int(profile["latency-wait"]) >= 30
    assert int(profile["retries"]) >= 1
    assert 1 <= int(profile["slurm-init-seconds-before-status-checks"]) <= 10


def test_defaults_and_heavy_stage_resources():
    profile = load_profile()
    defaults = pairs(profile["default-resources"])
    assert int(defaults["mem_mb"]) > 0 and int(defaults["runtime"]) > 0
    per_rule = {}
    for item in profile["set-resources"]:
        rule, setting = item.split(":", 1)
        key, value = setting.split("=", 1)
        per_rule.setdefault(rule, {})[key] = value
    assert int(per_rule["restore_faces"]["runtime"]) >= 30
    # Memory and wall time of the per-photo stages stay with the rules (sized per photo, doubled on
    # retry); a fixed value here would override them.
    assert not any("mem_mb" in settings for settings in per_rule.values())
    assert not {"enhance", "matte", "stamp", "detect_faces", "qa"} & {
        rule for rule, settings in per_rule.items() if "runtime" in settings}
    # The plugin turns `gpu` into `--gpus=N`; `gpus` would leave sbatch without a GPU (see below).
    assert not any(key in ("gpus", "gres") for settings in per_rule.values() for key in settings)


def test_partition_and_account_come_from_the_environment():
    plain = load_profile()
    assert pairs(plain["default-resources"])["slurm_partition"] == ""
    assert pairs(plain["default-resources"])["slurm_account"] == ""
    site = load_profile({"PHOTOARCHIVE_SLURM_PARTITION": "short", "PHOTOARCHIVE_SLURM_GPU_PARTITION": "gpu",
                         "PHOTOARCHIVE_SLURM_ACCOUNT": "proj42"})
    defaults = pairs(site["default-resources"])
    assert defaults["slurm_partition"] == "short" and defaults["slurm_account"] == "proj42"
    assert "restore_faces:slurm_partition=gpu" in site["set-resources"]
    assert "stamp:slurm_partition=gpu" in site["set-resources"]  # same group, same partition


def test_groups_are_plain_groups_and_the_gpu_rule_asks_for_gpu_not_gpus():
    profile = load_profile()
    assert "group-components" not in profile  # broken next to checkpoints in Snakemake 9.27.1
    groups = pairs(profile["groups"])
    assert groups["restore_faces"] == groups["stamp"] == groups["qa"] == "batch"
    rule_text = (REPO / "rules" / "restore.smk").read_text()
    resources = re.search(r"rule restore_faces:.*?resources:(.*?)\n    \w+:", rule_text, re.S).group(1)
    assert re.search(r"\bgpu=1\b", resources) and "gpus" not in resources


def test_plugin_turns_gpu_into_sbatch_gpus_and_ignores_gpus():
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    def job(**resources):
        return SimpleNamespace(resources=SimpleNamespace(get=lambda key, default=None: resources.get(key, default)))

    assert set_gres_string(job(gpu=1)).strip() == "--gpus=1"
    # The pitfall the profile documents: `gpus=1` asks sbatch for nothing, yet the job step asks srun for
    # a GPU (snakemake_executor_plugin_slurm_jobstep.get_gpu_setting), and SLURM refuses the step.
    assert set_gres_string(job(gpus=1)).strip() == ""


def test_profile_reads_cluster_sized_workflow_settings():
    profile = load_profile()
    # Snakemake resolves a plain value that names a file in the profile's folder against that folder.
    assert Path(profile["configfile"]) == PROFILE.parent / "workflow-config.yaml"
    settings = yaml.safe_load(Path(profile["configfile"]).read_text())
    local = yaml.safe_load((REPO / "config.yaml").read_text())
    assert settings["scheduling"]["batch_size"] > local["scheduling"]["batch_size"]


def profile_dry_run(workdir: Path, *configfiles: Path, config: str = f"input_dir={REPO / 'demo'}") -> str:
    if not SNAKEMAKE.exists():
        pytest.skip(f"no snakemake next to {sys.executable}")
    out = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--configfile", str(REPO / "config.yaml"),
         *map(str, configfiles), "--directory", str(workdir), "--profile", str(PROFILE.parent), "--dry-run",
         "--config", config],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def test_profile_dry_run_on_the_demo_submits_each_ingest_chunk_once(tmp_path):
    """The real workflow accepts the profile (options, groups, resources) up to the dedup checkpoint, and
    each ingest chunk is one SLURM job."""
    text = profile_dry_run(tmp_path, PROFILE.parent / "workflow-config.yaml")
    assert "checkpoint dedup" in text
    submissions = _count_module().count(text)
    assert submissions["rule ingest"] == 1  # 9 files, one chunk

    small_chunks = tmp_path / "chunks.yaml"
    small_chunks.write_text("scheduling:\n  ingest_chunk_size: 4\n")
    text = profile_dry_run(tmp_path / "small", small_chunks)
    assert _count_module().count(text)["rule ingest"] == 3  # 9 files, 4 to a chunk


def _cluster_module(name: str):
    spec = importlib.util.spec_from_file_location(name, CLUSTER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_module():
    return _cluster_module("check_slurm_run")


def _count_module():
    return _cluster_module("count_submissions")


def test_check_script_reads_snakemake_log_and_scontrol():
    check = _check_module()
    log = (
        "SLURM run ID: 3c126833-b5c3\n"
        "Job 2 has been submitted with SLURM jobid 138 (log: /w/.snakemake/slurm_logs/rule_dedup/138.log).\n"
        "Job 9fe has been submitted with SLURM jobid 139 (log: /w/.snakemake/slurm_logs/"
        "group_batch_enhance_restore_faces/139.log).\n"
        "localrule all:\n"
    )
    run_id, jobs, local = check.parse_log(log)
    assert run_id == "3c126833-b5c3"
    assert set(jobs) == {"138", "139"} and local == set()
    assert check.job_kind(jobs["139"]) == "group_batch_enhance_restore_faces"
    assert check.parse_log(log + "  localrule stamp:\n")[2] == {"stamp"}
    shown = check.parse_scontrol(
        "JobId=139 JobName=3c126833-b5c3 JobState=COMPLETED Comment=rule_batch_restore_faces WorkDir=/w "
        "TRES=cpu=2,mem=8000M,node=1,billing=2 TresPerJob=gres:gpu:1\n"
    )
    assert shown["139"]["JobState"] == "COMPLETED" and shown["139"]["TresPerJob"] == "gres:gpu:1"


def test_cluster_scripts_are_valid_bash():
    for script in sorted(CLUSTER.glob("*.sh")):
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)
