"""TorchScript modules (saved with torch.jit.save): on the worker's GPU when one is visible,
else on the CPU. The output is read as one value per row (regression) or one score per class
(classification: the prediction is the arg-max, named by a labels.json beside the model when
there is one, and the probabilities are its softmax)."""

from __future__ import annotations

import json
import os
from typing import Any, List, Optional

import numpy as np

from ..model_files import ModelNotFoundError
from ..prediction import LoadedModel, ModelInputError, Prediction
from ..settings import Settings
from . import register


def _labels_beside(path: str) -> Optional[List[Any]]:
    """Class labels from a `labels.json` (a JSON list) beside the model, if there is one."""
    labels_file = os.path.join(os.path.dirname(path), "labels.json")
    if not os.path.isfile(labels_file):
        return None
    with open(labels_file, encoding="utf-8") as f:
        labels = json.load(f)
    if not isinstance(labels, list) or not labels:
        raise ValueError(f"{labels_file} must hold a non-empty JSON list of class labels")
    return labels


@register("torchscript")
def load(path: str, settings: Settings) -> LoadedModel:
    try:
        import torch
    except ImportError:
        raise ModelNotFoundError(
            f"{path} is a TorchScript model, but this image has no PyTorch: serve it with the GPU image "
            "(Dockerfile.gpu; ServingImage.fromModelServer({ gpu: true }))"
        ) from None

    # Each worker sees only its own GPU (CUDA_VISIBLE_DEVICES, set per worker slot), as cuda:0.
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    module = torch.jit.load(path, map_location=device)
    module.eval()
    labels = _labels_beside(path)

    def predict(rows: np.ndarray) -> Prediction:
        inputs = torch.as_tensor(rows, dtype=torch.float32, device=device)
        try:
            with torch.inference_mode():
                output = module(inputs)
        except RuntimeError as err:
            # With validated numeric rows, a failing forward pass means the input's shape is wrong.
            raise ModelInputError(f"the model rejected the input: {str(err).splitlines()[0]}") from None
        output = output.detach().float()
        if output.dim() == 1 or (output.dim() == 2 and output.shape[1] == 1):
            return Prediction(output.reshape(-1).cpu().tolist(), None)
        if output.dim() != 2:
            raise TypeError(f"the model returned a tensor of shape {tuple(output.shape)}; expected (rows,) or (rows, classes)")
        classes = output.argmax(dim=1).cpu().tolist()
        if labels is not None:
            if output.shape[1] != len(labels):
                raise TypeError(f"the model scores {output.shape[1]} classes but labels.json lists {len(labels)}")
            classes = [labels[i] for i in classes]
        return Prediction(classes, torch.softmax(output, dim=1).cpu().tolist())

    info = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = str(torch.version.cuda)
    return LoadedModel(path=path, loader="torchscript", predict=predict, n_features=settings.model_n_features, info=info)
