"""siamese-mot: multi-object tracking of people with Siamese appearance and learned association."""

__version__ = "0.1.0"
