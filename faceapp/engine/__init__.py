"""Face detection and recognition models: catalogue, installer and inference backends."""
