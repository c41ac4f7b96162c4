"""realtime: real-time neural style transfer for live webcam video and recorded footage."""

__version__ = "0.1.0"
