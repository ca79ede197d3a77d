"""Detectors: ``detect(image, frame) -> Detections``, chosen by name in the config."""

from mot.registry import Registry

DETECTORS = Registry("detector", {
    "public": "detectors.public:PublicDetector",
    "gt": "detectors.oracle:GroundTruthDetector",
    "hog": "detectors.hog:HogDetector",
    "dnn": "detectors.dnn:DnnDetector",
    "ultralytics": "detectors.yolo_ultralytics:UltralyticsDetector",
})
