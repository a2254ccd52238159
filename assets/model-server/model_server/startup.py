"""A task's cold start, stage by stage, reported once its first worker is ready.

On ECS the task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4, GET /task) gives the image
pull's start and stop and the model fetcher container's start and finish; the model's bytes are
what the fetcher left in MODEL_DIR, so its rate follows; the worker measured its own load.
The stages are contiguous, so they add up to the time to ready:

    image pull        PullStartedAt -> PullStoppedAt
    model fetch       fetcher StartedAt -> FinishedAt   (after the fetcher container started)
    server start      fetcher FinishedAt -> the worker began to load the model
    model load        the worker's load
    time to ready     PullStartedAt -> ready

Without a metadata endpoint (a local run) the line says which stages it cannot know, and why.
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.request
from typing import Any, Dict, List, Optional

#: The fetcher's name in the task definition (lib/container-contract.ts: FETCHER_CONTAINER_NAME).
FETCHER_CONTAINER = "model-fetcher"


def _timestamp(value: Optional[str]) -> Optional[float]:
    """ECS's RFC 3339 timestamps (nanoseconds allowed) as seconds since the epoch."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Python's fromisoformat takes at most microseconds.
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def read_task_metadata(env: Dict[str, str], timeout: float = 1.0) -> Optional[Dict[str, Any]]:
    uri = env.get("ECS_CONTAINER_METADATA_URI_V4")
    if not uri:
        return None
    with urllib.request.urlopen(f"{uri}/task", timeout=timeout) as response:
        return json.load(response)


def model_bytes(model_dir: str) -> Optional[int]:
    """The bytes of every file below MODEL_DIR: what the fetcher downloaded (unpacked, for an archive)."""
    total = 0
    try:
        for root, _, files in os.walk(model_dir):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    except OSError:
        return None
    return total


def timeline(task: Optional[Dict[str, Any]], size: Optional[int], load_started: float, ready: float,
             why_no_task: str = "") -> Dict[str, Any]:
    """The startup record: each stage's seconds, and under "unknown" the stages it cannot know."""
    stages: Dict[str, float] = {"model_load_seconds": ready - load_started}
    unknown: List[str] = []
    pull_started = pull_stopped = fetch_started = fetch_finished = None
    if task is not None:
        pull_started, pull_stopped = _timestamp(task.get("PullStartedAt")), _timestamp(task.get("PullStoppedAt"))
        fetcher = next((c for c in task.get("Containers", []) if c.get("Name") == FETCHER_CONTAINER), {})
        fetch_started, fetch_finished = _timestamp(fetcher.get("StartedAt")), _timestamp(fetcher.get("FinishedAt"))
    if pull_started is not None and pull_stopped is not None:
        stages["image_pull_seconds"] = pull_stopped - pull_started
    else:
        unknown.append("image_pull_seconds")
    if fetch_started is not None and fetch_finished is not None:
        stages["model_fetch_seconds"] = fetch_finished - fetch_started
        stages["server_start_seconds"] = load_started - fetch_finished
    else:
        unknown += ["model_fetch_seconds", "server_start_seconds"]
    if pull_started is not None:
        stages["time_to_ready_seconds"] = ready - pull_started
    else:
        unknown.append("time_to_ready_seconds")
    record: Dict[str, Any] = {"event": "startup", **{k: round(v, 3) for k, v in stages.items()}}
    if size is not None:
        record["model_bytes"] = size
        fetch_seconds = stages.get("model_fetch_seconds")
        if fetch_seconds:
            record["model_fetch_mib_per_s"] = round(size / 2**20 / fetch_seconds, 1)
    if unknown:
        record["unknown"] = unknown
        record["why"] = why_no_task or "the task metadata does not have these timestamps"
    return record


#: The EMF metric each stage is published as (seconds), when it is known.
EMF_NAMES = {
    "image_pull_seconds": "ImagePullSeconds",
    "model_fetch_seconds": "ModelFetchSeconds",
    "server_start_seconds": "ServerStartSeconds",
    "time_to_ready_seconds": "TimeToReadySeconds",
}


def report(env: Dict[str, str], model_dir: str, load_started: float, ready: float) -> Dict[str, Any]:
    """Reads what there is to read, and returns the startup record; never raises."""
    task, why = None, ""
    try:
        task = read_task_metadata(env)
        if task is None:
            why = "no ECS_CONTAINER_METADATA_URI_V4: not an ECS task"
    except Exception as err:  # a report must never stop a worker
        why = f"the task metadata endpoint did not answer: {type(err).__name__}: {err}"
    return timeline(task, model_bytes(model_dir), load_started, ready, why)
