"""Model loaders, one module per format. A module registers the file suffixes it loads with
`@register(...)`; adding a format is adding a module here and importing it below."""

from __future__ import annotations

from typing import Callable, Dict, Tuple

from ..model_files import ModelNotFoundError
from ..prediction import LoadedModel
from ..settings import Settings

Loader = Callable[[str, Settings], LoadedModel]

_LOADERS: Dict[str, Loader] = {}


def register(*suffixes: str) -> Callable[[Loader], Loader]:
    def add(loader: Loader) -> Loader:
        for suffix in suffixes:
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
