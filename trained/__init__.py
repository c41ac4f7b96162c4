"""Shipped style models: <style>.onnx with its training record <style>.json (see realtime.models)."""
