"""siamese-mot: multi-object tracking of people with Siamese appearance and learned association.

The public API::

    import mot
    tracker = mot.Tracker(frame_rate=30)                 # or config="iou_only", a YAML path ...
    tracks = tracker.update(mot.Detections(tlwh, scores), image)

``Tracker``, ``Detections``, ``TrackResults``, ``load_config``, ``run`` (the MOTChallenge runner)
and ``UserError`` are exported here; everything else is reached through its module.
"""

__version__ = "0.2.0"

__all__ = ["Tracker", "Detections", "TrackResults", "load_config", "run", "UserError"]

# Imported on first use, so that `import mot` stays cheap (and works in a peer tracker's
# interpreter that runs one module of the package without the rest of its dependencies).
_EXPORTS = {"Tracker": "mot.api", "Detections": "mot.types", "TrackResults": "mot.io",
            "load_config": "mot.config", "run": "mot.pipeline", "UserError": "mot.errors"}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mot' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
