"""Finds the one model file to serve in the model directory."""

from __future__ import annotations

import os
from typing import List, Optional, Sequence


class ModelNotFoundError(FileNotFoundError):
    """No usable model file, or more than one and no MODEL_FILE to choose."""


def find_model_file(model_dir: str, suffixes: Sequence[str], model_file: Optional[str] = None) -> str:
    """The model to serve: MODEL_FILE (relative to the model directory, or absolute), or the one
    file with a known suffix found anywhere below the directory. Hidden files and directories
    (the fetcher's staging names among them) are ignored."""
    if model_file:
        path = model_file if os.path.isabs(model_file) else os.path.join(model_dir, model_file)
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"MODEL_FILE {path} does not exist or is not a file")
        return path
    if not os.path.isdir(model_dir):
        raise ModelNotFoundError(f"MODEL_DIR {model_dir} does not exist or is not a directory")
    found: List[str] = []
    for root, dirs, files in os.walk(model_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith(".") and f.endswith(tuple(suffixes)))
    if not found:
        raise ModelNotFoundError(f"no model file ({', '.join(suffixes)}) found in {model_dir}")
    if len(found) > 1:
        raise ModelNotFoundError(
            f"{len(found)} model files in {model_dir} ({', '.join(os.path.relpath(f, model_dir) for f in found)}): "
            "set MODEL_FILE to the one to serve"
        )
    return found[0]
