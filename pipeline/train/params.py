"""The trainable tensors: one ``nn.Parameter`` per optimiser group, rows = Gaussians.

The SH coefficients are two groups (DC and rest) because they learn at different rates;
:func:`splats_from_params` joins them back into :class:`~pipeline.splats.Splats`.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor
from torch.nn import Parameter

from pipeline.render.types import Gaussians
from pipeline.splats import Splats

__all__ = [
    "PARAM_NAMES",
    "ParamName",
    "Params",
    "gaussians_from_params",
    "num_gaussians",
    "params_from_splats",
    "splats_from_params",
]

ParamName = Literal["means", "quats", "log_scales", "logit_opacities", "sh_dc", "sh_rest"]
PARAM_NAMES: tuple[ParamName, ...] = get_args(ParamName)

# Shapes: means [N, 3], quats [N, 4], log_scales [N, 3], logit_opacities [N],
# sh_dc [N, 1, 3], sh_rest [N, K - 1, 3].
Params = dict[ParamName, Parameter]


def params_from_splats(splats: Splats, device: torch.device | str = "cpu") -> Params:
    """Fresh float32 leaf parameters on ``device`` holding a copy of ``splats``."""
    tensors: dict[ParamName, Tensor] = {
        "means": splats.means,
        "quats": splats.quats,
        "log_scales": splats.log_scales,
        "logit_opacities": splats.logit_opacities,
        "sh_dc": splats.sh[:, :1],
        "sh_rest": splats.sh[:, 1:],
    }
    return {
        name: Parameter(t.detach().to(device=device, dtype=torch.float32).clone().contiguous())
        for name, t in tensors.items()
    }


def splats_from_params(params: Params) -> Splats:
    """The parameters as :class:`Splats` (still attached to autograd)."""
    return Splats(
        means=params["means"],
        quats=params["quats"],
        log_scales=params["log_scales"],
        logit_opacities=params["logit_opacities"],
        sh=torch.cat([params["sh_dc"], params["sh_rest"]], dim=1),
    )


def gaussians_from_params(params: Params) -> Gaussians:
    """Activated, differentiable Gaussians for the rasterizer."""
    return splats_from_params(params).activated()


def num_gaussians(params: Params) -> int:
    """Number of rows."""
    return int(params["means"].shape[0])
