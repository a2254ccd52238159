"""Model loaders, one module per format. A module registers its loader under its format's name
with `@register(name)`; the file suffixes of each format, and the images that serve it, are listed
in formats.json beside this file, which the constructs and `npm run local` read too
(lib/model/model-formats.ts), so both sides judge a model file alike. Adding a format is adding a
module here, importing it below, and its entry to formats.json."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, Tuple

from ..model_files import ModelNotFoundError
from ..prediction import LoadedModel
from ..settings import Settings

Loader = Callable[[str, Settings], LoadedModel]

_LOADERS: Dict[str, Loader] = {}

with open(os.path.join(os.path.dirname(__file__), "formats.json"), encoding="utf-8") as _formats:
    FORMATS: Dict[str, Dict[str, Any]] = json.load(_formats)


def register(format_name: str) -> Callable[[Loader], Loader]:
    def add(loader: Loader) -> Loader:
        for suffix in FORMATS[format_name]["suffixes"]:
            _LOADERS[suffix] = loader
        return loader

    return add


def model_suffixes() -> Tuple[str, ...]:
    """File suffixes the server can load."""
    return tuple(_LOADERS)


def load_model(path: str, settings: Settings) -> LoadedModel:
    for suffix, loader in _LOADERS.items():
        if path.endswith(suffix):
            return loader(path, settings)
    raise ModelNotFoundError(f"{path}: unsupported model format (expected one of {', '.join(_LOADERS)})")


# The formats; each module imports its library only when a model of its kind is loaded.
from . import pickled, torchscript  # noqa: E402,F401  (registration)
