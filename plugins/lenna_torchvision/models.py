"""torchvision's classification models, built without weights, at a width multiplier.

Nothing is downloaded: models are built with torchvision's random initialisation, and the
Graph IR takes its own random weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lenna_core.api import LennaError

if TYPE_CHECKING:
    from torch import nn

DEFAULT_MODELS = ("resnet18", "resnet34", "resnet50", "densenet121", "vgg11", "vgg16",
                  "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
                  "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "regnet_x_400mf",
                  "regnet_y_400mf")
"""The models LENNA checks against torchvision's published figures; the default sample."""


def classification_models() -> list[str]:
    """Every classification model name torchvision knows."""
    from torchvision import models

    return sorted(models.list_models(module=models))


def _mobilenet_v3(name: str, width: float, num_classes: int) -> nn.Module:
    from torchvision.models import mobilenetv3

    setting, last_channel = mobilenetv3._mobilenet_v3_conf(name, width_mult=width)
    return mobilenetv3.MobileNetV3(setting, last_channel, num_classes=num_classes)


def _efficientnet(name: str, width: float, num_classes: int) -> nn.Module:
    from torchvision.models import efficientnet

    setting, last_channel = efficientnet._efficientnet_conf(name, width_mult=width,
                                                            depth_mult=1.0)
    return efficientnet.EfficientNet(setting, dropout=0.2, last_channel=last_channel,
                                     num_classes=num_classes)


def _keyword(key: str, scale: Callable[[float], Any]) -> Callable[[str, float, int], nn.Module]:
    def build(name: str, width: float, num_classes: int) -> nn.Module:
        from torchvision import models

        return models.get_model(name, weights=None, num_classes=num_classes,
                                **{key: scale(width)})
    return build


WIDTH_BUILDERS: dict[str, Callable[[str, float, int], nn.Module]] = {
    "mobilenet_v2": _keyword("width_mult", float),
    "mobilenet_v3_small": _mobilenet_v3,
    "mobilenet_v3_large": _mobilenet_v3,
    "efficientnet_b0": _efficientnet,
    **{name: _keyword("width_per_group", lambda w: max(1, round(64 * w)))
       for name in ("resnet50", "resnet101", "resnet152")},
}
"""Models with width variants: mobilenets' and EfficientNet's width multiplier, and the
bottleneck ResNets' width per group (``width=2`` is wide_resnet50_2's layout)."""


def build_model(name: str, width: float, num_classes: int) -> nn.Module:
    """torchvision's ``name`` in eval mode with random weights; LennaError for unknown names
    and widths the model has no variants for."""
    from torchvision import models

    known = classification_models()
    if name not in known:
        raise LennaError(f"unknown torchvision model {name!r}; choose from {', '.join(known)}")
    if width != 1.0 and name not in WIDTH_BUILDERS:
        raise LennaError(f"torchvision model {name} has no width variants; width works for "
                         f"{', '.join(WIDTH_BUILDERS)}")
    if width != 1.0:
        module = WIDTH_BUILDERS[name](name, width, num_classes)
    else:
        module = models.get_model(name, weights=None, num_classes=num_classes)
    return module.eval()
