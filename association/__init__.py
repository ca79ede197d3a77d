"""Association: costs between tracks and detections, and the linker that matches them."""

from mot.registry import Registry

ASSOCIATIONS = Registry("association", {
    "iou": "association.iou:IoUAssociation",
    "learned": "association.learned:LearnedAssociation",
})
