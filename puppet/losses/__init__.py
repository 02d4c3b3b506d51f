"""Loss library: plain functions on tensors plus thin ``nn.Module`` wrappers.

Feature extractors are built by the caller (:class:`puppet.losses.vgg.VGGFeatures`)
and passed in; no loss builds one itself.
"""

from puppet.losses.contextual import (
    ContextualLoss,
    VGGContextualLoss,
    contextual_loss,
    contextual_loss_layers,
    contextual_loss_reference,
    contextual_similarity,
    contextual_similarity_reference,
    sample_positions,
)
from puppet.losses.perceptual import (
    GramLoss,
    PerceptualLoss,
    gram_loss,
    gram_matrix,
    perceptual_loss,
)
from puppet.losses.pixel import (
    DetailLoss,
    L1Loss,
    MaskedL1Loss,
    detail_loss,
    l1_loss,
    masked_l1_loss,
)

__all__ = [
    "ContextualLoss", "VGGContextualLoss", "contextual_loss", "contextual_loss_layers",
    "contextual_loss_reference", "contextual_similarity", "contextual_similarity_reference",
    "sample_positions", "GramLoss", "PerceptualLoss", "gram_loss", "gram_matrix", "perceptual_loss",
    "DetailLoss", "L1Loss", "MaskedL1Loss", "detail_loss", "l1_loss", "masked_l1_loss",
]
