"""TransformNet: the feed-forward style network of Johnson et al. (2016), with the later fixes that the
community settled on: instance norm instead of batch norm (Ulyanov et al.), reflection padding (no border
artefacts), and nearest-neighbour upsampling followed by a convolution instead of transposed
convolutions (no checkerboard, Odena et al. 2016).

Width (channels of the first layer) and depth (residual blocks) are settings so that faster tiers can be
trained with the same code. Input and output are RGB in [0, 1], NCHW; height and width must be multiples
of 4 (two stride-2 stages).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Mirrored margin, in pixels, that the runtime adds around every frame for either network and crops
# off after (modelmeta.BORDER); each network's class says why it needs one.
RUNTIME_BORDER = 16


class ConvLayer(nn.Sequential):
    """Reflection-padded convolution, optionally followed by instance norm and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout, affine=True))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3), ConvLayer(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Sequential):
    """Nearest ×2 upsampling then a convolution: no transposed convolutions, so no checkerboard."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(cin, cout, kernel))


class TransformNet(nn.Module):
    """Encoder (9×9 stem, two stride-2 convs), ``depth`` residual blocks, decoder (two upsample+conv, 9×9 out)."""

    size_multiple = 4
    # Reflection padding inside does not stop the style loss from painting a frame at the picture's
    # edge (starry_night: a dark band). The runtime mirrors the input by this margin and crops it off
    # (modelmeta.BORDER). Measured on 4 validation photos at 384 px against a 64-px margin, mean change
    # in the outer 24 px (interior in brackets), no margin → 16 px: starry_night 21.6 (7.3) → 6.2 (5.1),
    # great_wave 11.3 (8.6) → 4.8 (5.2), composition_viii 8.0 (5.9) → 3.3 (3.4), the_scream 5.4 (3.6)
    # → 2.5 (2.2). It costs 14 % more pixels at 640×360.
    runtime_border = RUNTIME_BORDER

    def __init__(self, width: int = 32, depth: int = 5):
        super().__init__()
        w = width
        self.width, self.depth = width, depth
        self.encoder = nn.Sequential(ConvLayer(3, w, 9), ConvLayer(w, 2 * w, 3, stride=2), ConvLayer(2 * w, 4 * w, 3, stride=2))
        self.residuals = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(depth)])
        self.decoder = nn.Sequential(
            UpsampleConv(4 * w, 2 * w), UpsampleConv(2 * w, w), ConvLayer(w, 3, 9, norm=False, relu=False)
        )

    # The decoder emits pixels in 0..255 units, as in the reference implementation, and we scale them
    # to [0, 1]. This scale sets how far one optimizer step moves the output: emitting [0, 1] directly
    # makes each Adam step 255× larger relative to the pixel range, which trains unstably (colour
    # blobs, no style after hundreds of iterations).
    output_scale = 1.0 / 255.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.residuals(self.encoder(x))) * self.output_scale


class SeparableResidualBlock(nn.Module):
    """Residual block of two depthwise-separable 3×3 convolutions (MobileNet style) with one instance norm:
    a ninth of the multiply-adds of a dense block, and one normalisation instead of two because each
    InstanceNormalization is a layout change plus two passes over memory in ONNX Runtime on CPU."""

    def __init__(self, channels: int, norm: bool = True):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1),
            nn.InstanceNorm2d(c, affine=True) if norm else nn.Identity(), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FastTransformNet(nn.Module):
    """The fast tier, chosen by timing candidates with ONNX Runtime on 2 CPU cores (tools/bench.py):
    two stride-2 3×3 convolutions take the image to quarter resolution, where ``depth`` separable residual
    blocks of ``width`` channels do the work; the decoder reduces channels *before* upsampling (1×1 conv
    at quarter resolution), then nearest ×2 + 3×3 conv twice, with only ``width // 8`` channels at half
    and full resolution. Zero padding inside: ONNX Runtime's Pad op copies the tensor, which cost more
    than the convolutions here. Zero padding tells the network where the picture ends, and the style
    loss rewards it for painting a frame there (starry_night's fast model framed every picture with a
    bright line and a dark band). So the export asks the runtime for a mirrored margin of
    ``runtime_border`` pixels (modelmeta.BORDER), cropped off after: the frame then falls outside the
    picture. Measured on 4 validation photos at 384 px against a 64-px margin, mean change in the outer
    24 px (interior in brackets): no margin 24.5 (6.5), 8 px 9.9 (5.4), 16 px 5.0 (4.4). Training
    through an 8-px margin instead made it worse (22 at 8 px): the network moved its frame inwards.

    The first version decoded with pixel shuffle (sub-pixel convolution) at the same speed; fine-tuned
    with the Gram-matrix style loss it painted a regular 4-pixel grid over flat areas, because every
    sub-pixel position had its own kernel and the style loss rewards that high-frequency energy. Nearest
    upsampling followed by one shared convolution cannot make a position-dependent pattern (Odena et
    al. 2016): a constant image stays constant (tests/test_tiers.py).

    ``residual_norm=False`` drops the instance norm of each residual block: ORT runs InstanceNormalization
    outside its blocked (NCHWc) layout, so each one also costs two layout changes. Model-only at 672×392 /
    672×512 (interleaved, median ms): 33.2 / 49.4 with, 31.1 / 39.8 without. Trained with the shipped
    recipe it lost quality (val, 512 px, style distance ÷ full tier's, content distance): the_scream
    1.20× / 6.31 after stage 4 (shipped: 1.10× / 6.26), great_wave 1.19–1.30× with content 14.8–15.0,
    worse than the full tier's 14.3. So the shipped models keep it."""

    size_multiple = 4
    runtime_border = RUNTIME_BORDER
    # The same reasoning as TransformNet.output_scale, scaled to this decoder: its last convolution sums
    # 8×9 = 72 terms where the full net's sums 32×81 = 2592, so at 1/255 each Adam step moved the output
    # 36× less and distillation crawled (loss 0.43 → 0.40 in 100 steps). 1/8 restores about the full
    # net's step; the 0.5 offset starts the output at mid-grey instead of black.
    output_scale = 1.0 / 8.0
    output_offset = 0.5

    def __init__(self, width: int = 64, depth: int = 4, residual_norm: bool = True):
        super().__init__()
        self.width, self.depth = width, depth
        half = max(4, width // 8)
        self.encoder = nn.Sequential(
            nn.Conv2d(3, half, 3, 2, 1), nn.InstanceNorm2d(half, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(half, width, 3, 2, 1), nn.InstanceNorm2d(width, affine=True), nn.ReLU(inplace=True),
        )
        self.residuals = nn.Sequential(*[SeparableResidualBlock(width, residual_norm) for _ in range(depth)])
        self.decoder = nn.Sequential(
            nn.Conv2d(width, 2 * half, 1), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * half, half, 3, padding=1), nn.InstanceNorm2d(half, affine=True), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(half, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.residuals(self.encoder(x))) * self.output_scale + self.output_offset

    # The exported file returns its output as the four sub-pixel phases at half resolution
    # (modelmeta.OUTPUT_PHASES); see export_form.
    output_phases = 2

    def export_form(self) -> nn.Module:
        """The same function in the form ONNX Runtime runs fastest on a CPU. The last nearest ×2 + 3×3
        convolution (8 → 3 channels at full resolution) becomes one 3×3 convolution at half resolution
        with 4 × 3 outputs: the colours of the four pixels of each 2×2 output block, the output scale
        and offset folded into its weights. The file returns those phases (modelmeta.OUTPUT_PHASES) and
        the runtime interleaves them into the picture while it converts the planes to interleaved uint8,
        which it does anyway: 0.3–0.7 ms more a 640×480 frame than the plain conversion, where ORT's
        DepthToSpace (a generic transpose) cost 5 ms. Against the previous form (one 4×4 stride-2 transposed
        convolution at full resolution: 4.5 ms of ~41 in ORT's profile), the_scream's weights, model
        only, 12 interleaved rounds of 8 calls on 2 threads, median (minimum) ms: 672×512 (640×480
        with the border) 49.2 (39.8) → 45.7 (36.2), 672×392 32.1 (28.2) → 29.6 (26.8). Exact up to
        float rounding: tests/test_tiers.py."""
        d = self.decoder
        last = nearest_up_conv_as_phases(d[6], self.output_scale, self.output_offset)
        return nn.Sequential(self.encoder, self.residuals, *d[:5], last).eval()


# Along one axis, output position 2i + p of "nearest ×2, then a 3×3 convolution (padding 1)" reads the
# upsampled positions 2i + p - 1, 2i + p, 2i + p + 1 with kernel taps 0, 1, 2, i.e. input rows
# i - 1, i, i (p = 0) or i, i, i + 1 (p = 1). _PHASE_TAPS[p][u][t] = 1 where tap t reads row i + u - 1.
_PHASE_TAPS = torch.tensor([
    [[1, 0, 0], [0, 1, 1], [0, 0, 0]],
    [[0, 0, 0], [1, 1, 0], [0, 0, 1]],
], dtype=torch.float32)


def nearest_up_conv_as_phases(conv: nn.Conv2d, scale: float = 1.0, offset: float = 0.0) -> nn.Conv2d:
    """A 3×3, padding-1 Conv2d at the input's resolution with 4× ``conv``'s output channels, equal to
    ``conv(upsample_nearest_x2(x)) * scale + offset`` in phase layout: output channel (2a + b)·C + c at
    (i, j) is channel c of the full result at (2i + a, 2j + b), the order of ONNX DepthToSpace (DCR;
    modelmeta.phases_to_image). Both zero-pad the same way, so the border matches too. The tied taps
    are why this paints no sub-pixel grid, unlike a freely trained sub-pixel convolution."""
    if conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1) or conv.groups != 1:
        raise ValueError("expects a dense 3x3 convolution with padding 1 and stride 1")
    w = conv.weight.detach()
    taps = _PHASE_TAPS.to(w.dtype)
    c_out, c_in = conv.out_channels, conv.in_channels
    out = nn.Conv2d(c_in, 4 * c_out, 3, padding=1, bias=True)
    with torch.no_grad():
        weight = torch.einsum("aut,bvs,cits->abciuv", taps, taps, w).reshape(4 * c_out, c_in, 3, 3)
        out.weight.copy_(weight * scale)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(c_out)
        out.bias.copy_((bias * scale + offset).repeat(4))
    return out


ARCHS = {"full": TransformNet, "fast": FastTransformNet}


def build_model(arch: str, width: int, depth: int, residual_norm: bool = True) -> nn.Module:
    """The network of a tier: ``full`` (Johnson et al.) or ``fast`` (quarter-resolution, separable).
    ``residual_norm=False`` (fast only) leaves instance norm out of the residual blocks."""
    if arch == "fast":
        return FastTransformNet(width, depth, residual_norm)
    if not residual_norm:
        raise ValueError(f"residual_norm=False is a setting of the fast arch, not {arch!r}")
    return ARCHS[arch](width, depth)


def macs_per_pixel(model: nn.Module, size: int = 64) -> float:
    """Multiply-accumulates per input pixel, counted with forward hooks on a size×size input."""
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return total / (size * size)


def forward_with_border(net: nn.Module, x: torch.Tensor, border: int) -> torch.Tensor:
    """``net(x)`` as the runtime stylizer runs it: ``x`` mirrored by ``border`` pixels on every side
    (edge copies when the picture is too small to mirror), the output cropped back to ``x``'s size."""
    if border <= 0:
        return net(x)
    h, w = x.shape[-2:]
    y = net(F.pad(x, (border,) * 4, mode="reflect" if border < min(h, w) else "replicate"))
    return y[..., border:border + h, border:border + w]
