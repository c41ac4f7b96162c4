"""TransformNet: the feed-forward style network of Johnson et al. (2016), with the later fixes that the
community settled on: instance norm instead of batch norm (Ulyanov et al.), reflection padding (no border
artefacts), and nearest-neighbour upsampling followed by a convolution instead of transposed
convolutions (no checkerboard, Odena et al. 2016).

Width (channels of the first layer) and depth (residual blocks) are settings so that faster tiers can be
trained with the same code. Input and output are RGB in [0, 1], NCHW; height and width must be multiples
of 4 (two stride-2 stages).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

# torch's and ONNX's default epsilon of instance normalisation: no floor.
DEFAULT_NORM_EPS = 1e-5

# Mirrored margin, in pixels, that the runtime adds around every frame for either network and crops
# off after (modelmeta.BORDER); each network's class says why it needs one.
RUNTIME_BORDER = 16


class CondInstanceNorm2d(nn.Module):
    """Conditional instance normalisation (Dumoulin et al. 2017): instance norm whose scale and shift are
    rows of per-style tables (``styles`` × C), mixed by a style vector. Every other weight of the network
    is shared, so one network holds many styles, a convex mix of rows is a blend, and a new style needs
    only its own rows.

    The network sets ``style`` before it runs (``StyledNetwork.forward``): a vector of N weights for the
    whole batch (the exported graph's ``style`` input: the mixed rows become the scale and bias inputs of
    ONNX InstanceNormalization, so the runtime pays one tiny MatMul per norm), or N × B weights, one
    style per sample (training draws a style per crop). With one style, no vector is needed.

    A single-style checkpoint (nn.InstanceNorm2d with C-long weight and bias) loads as the N = 1 case."""

    def __init__(self, channels: int, styles: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(styles, channels))
        self.bias = nn.Parameter(torch.zeros(styles, channels))
        self.style: torch.Tensor | None = None
        # The variance floor (instance norm's epsilon; see calibrate_norm_floor). A buffer, so checkpoints and
        # state dicts carry it; forward reads the Python copy, so no step waits for the device to read it.
        self.register_buffer("eps", torch.tensor(DEFAULT_NORM_EPS))
        self._read_eps()
        self._register_load_state_dict_pre_hook(self._upgrade_old_state)
        self.register_load_state_dict_post_hook(lambda module, _keys: module._read_eps())

    @staticmethod
    def _upgrade_old_state(state_dict: dict, prefix: str, *_args) -> None:
        """State dicts from before conditional norms (C-long weight and bias) or before the floor (no eps)."""
        for key in (prefix + "weight", prefix + "bias"):
            if key in state_dict and state_dict[key].dim() == 1:
                state_dict[key] = state_dict[key].unsqueeze(0)
        # written before the floor existed: instance norm's usual epsilon
        state_dict.setdefault(prefix + "eps", torch.tensor(DEFAULT_NORM_EPS))

    def _read_eps(self) -> None:
        self._eps = float(self.eps)  # float32, as ONNX's epsilon attribute holds it

    def set_eps(self, value: float) -> None:
        self.eps.fill_(value)
        self._read_eps()

    @property
    def styles(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.style
        if s is None:
            if self.styles != 1:
                raise ValueError(f"a network of {self.styles} styles needs a style vector")
            return F.instance_norm(x, weight=self.weight[0], bias=self.bias[0], eps=self._eps)
        if s.dim() == 1:
            return F.instance_norm(x, weight=s @ self.weight, bias=s @ self.bias, eps=self._eps)
        scale, shift = s @ self.weight, s @ self.bias  # one style per sample: B × C
        return F.instance_norm(x, eps=self._eps) * scale[:, :, None, None] + shift[:, :, None, None]


def style_norms(module: nn.Module) -> list[CondInstanceNorm2d]:
    return [m for m in module.modules() if isinstance(m, CondInstanceNorm2d)]


def norm_eps(module: nn.Module) -> list[float]:
    """Every conditional norm's variance floor, in the order of ``style_norms``."""
    return [m._eps for m in style_norms(module)]


def has_norm_floor(module: nn.Module) -> bool:
    """Whether any norm has a floor above instance norm's usual epsilon (with room for the default's
    float16 rounding in a model-only stage file)."""
    return any(e > 2 * DEFAULT_NORM_EPS for e in norm_eps(module))


def set_norm_eps(module: nn.Module, values: list[float]) -> None:
    norms = style_norms(module)
    if len(values) != len(norms):
        raise ValueError(f"{len(values)} floors for a network of {len(norms)} norms")
    for m, v in zip(norms, values):
        m.set_eps(float(v))


@torch.no_grad()
def calibrate_norm_floor(module: nn.Module, crops: torch.Tensor, factor: float) -> list[float]:
    """Instance norm stretches every feature to unit variance, however faint it was: a dark or hazy photo
    (a storm sky, fog, a smooth wall) has its faint contrast blown up to full strength, and the network
    paints over it (the validation set's storm sky became a bright band of stroke lattice). A floor under
    the variance leaves faint features faint: each norm's epsilon becomes ``factor`` × the median per-channel variance of its
    input over ``crops`` (normally exposed training photos, N×3×H×W), each crop in style ``k mod
    styles``, so a far fainter feature than usual is not amplified. The factor must be about 1: a feature
    of relative strength a leaves a norm at a / √(a² + factor), so below 1 every later norm stretches it
    back towards √(1 − factor) and the floor is undone by the end of the network
    (tests/test_norm_floor.py). All floors are measured in one pass on the network without any, so with
    them each later norm's input is weaker than measured and its floor bites harder: usual features come
    out weaker too (about 1/√(n + 1) at the n-th norm, by the same rule), and a network given a floor
    needs fine-tuning with it, which restores them. Measured this way the floors scale with the weights
    before each norm, so re-measuring during training (the trainer does, ``norm_floor_every``) makes them
    follow a network that scales its weights up to outgrow them; stage 3 in stages/multi/README.md kept
    doing so. Returns the floors (also set on the network)."""
    norms = style_norms(module)
    set_norm_eps(module, [DEFAULT_NORM_EPS] * len(norms))  # measured without floors, so re-measuring is the same rule
    seen: list[list[torch.Tensor]] = [[] for _ in norms]
    hooks = [m.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0].float().var(dim=(2, 3)).flatten()))
             for i, m in enumerate(norms)]
    styles = norms[0].styles if norms else 1
    was_training = module.training
    module.eval()
    try:
        for k, crop in enumerate(crops):
            vector = torch.eye(styles, device=crop.device)[k % styles] if styles > 1 else None
            module(crop[None], vector)
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    floors = [factor * torch.cat(v).median().item() for v in seen]
    set_norm_eps(module, floors)
    return floors


def style_count(module: nn.Module) -> int:
    """The number of styles a network holds (1 for a network without conditional norms)."""
    norms = style_norms(module)
    return norms[0].styles if norms else 1


@contextmanager
def styled(module: nn.Module, style: torch.Tensor | None) -> Iterator[None]:
    """Run ``module``'s conditional norms with ``style`` (N, or B × N weights) for the duration."""
    norms = style_norms(module)
    if style is not None:
        n = norms[0].styles if norms else 1
        if style.shape[-1] != n:
            raise ValueError(f"style vector has {style.shape[-1]} weights; the network holds {n} styles")
    for m in norms:
        m.style = style
    try:
        yield
    finally:
        for m in norms:
            m.style = None


def add_style_rows(module: nn.Module, source: int | None = None) -> int:
    """Append one style row to every conditional norm (a copy of row ``source``, or the mean of all rows)
    and return the new style's index. The existing rows are untouched, so the other styles are too."""
    for m in style_norms(module):
        with torch.no_grad():
            for name in ("weight", "bias"):
                table = getattr(m, name)
                row = table[source:source + 1] if source is not None else table.mean(0, keepdim=True)
                setattr(m, name, nn.Parameter(torch.cat([table.detach(), row.detach().clone()], 0)))
    return style_count(module) - 1


def move_style_row(module: nn.Module, source: int, target: int) -> None:
    """Move style ``source``'s row of every conditional norm to index ``target`` (the rows between shift
    by one): a refined style is trained as the last row, the one ``add_to`` runs learn, and put back."""
    for m in style_norms(module):
        with torch.no_grad():
            for name in ("weight", "bias"):
                table = getattr(m, name)
                order = list(range(table.shape[0]))
                order.insert(target, order.pop(source))
                setattr(m, name, nn.Parameter(table.detach()[order].clone()))


def remove_style_row(module: nn.Module, index: int) -> None:
    """Take style ``index``'s row out of every conditional norm: the network no longer has that style, and
    every other style computes what it did (the shared weights and their rows are untouched)."""
    count = style_count(module)
    if not 0 <= index < count or count < 2:
        raise ValueError(f"cannot remove style {index} of a network of {count} style(s)")
    keep = [k for k in range(count) if k != index]
    for m in style_norms(module):
        with torch.no_grad():
            for name in ("weight", "bias"):
                setattr(m, name, nn.Parameter(getattr(m, name).detach()[keep].clone()))


def resize_styles(module: nn.Module, styles: int) -> None:
    """Give every conditional norm ``styles`` rows, each a copy of its first (a multi-style run started
    from a single-style network: every style begins as that one)."""
    for m in style_norms(module):
        with torch.no_grad():
            for name in ("weight", "bias"):
                table = getattr(m, name)
                setattr(m, name, nn.Parameter(table[:1].detach().repeat(styles, 1)))


def start_as_identity(block: nn.Module) -> None:
    """Make a residual block add nothing (x + 0): its last layer's weights and biases become zero, a
    convolution's or, where a norm ends the block (the full tier), every style's row of that norm. The
    block still learns: the zeroed layer gets a gradient at once, the layers before it as soon as it moves
    (the zero-initialised residual branch of Goyal et al. 2017). A network deepened this way computes what
    the shallower one did, so training it on from trained weights loses nothing at the first step."""
    last = [m for m in block.modules() if isinstance(m, (nn.Conv2d, CondInstanceNorm2d))][-1]
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()


def load_into_deeper(module: nn.Module, state: dict[str, torch.Tensor], depth: int) -> int:
    """Load a network of ``depth`` residual blocks into ``module``, which has more: its first ``depth``
    blocks and everything else take the saved weights, the extra blocks come last and start as the identity
    (start_as_identity), so ``module`` computes what the saved network did. Returns the blocks added."""
    blocks = module.residuals
    missing, unexpected = module.load_state_dict(state, strict=False)
    new = {f"residuals.{i}." for i in range(depth, len(blocks))}
    stray = [k for k in missing if not any(k.startswith(p) for p in new)]
    if unexpected or stray or depth >= len(blocks):
        raise ValueError(f"weights of {depth} residual blocks do not fit a network of {len(blocks)}: "
                         f"{(list(unexpected) + stray)[:3]}")
    for block in list(blocks)[depth:]:
        start_as_identity(block)
    return len(blocks) - depth


def _widen_state(state: dict[str, torch.Tensor], module: nn.Module, prefix: str,
                 readers: tuple[tuple[str, int], ...]) -> dict[str, torch.Tensor]:
    """``state`` with each tensor under ``prefix`` grown to ``module``'s shape: saved values in the leading
    channels, ``module``'s own fresh ones in the new (new norm rows are 1 and 0), and each reader's
    weights on the new channels (``readers``: key, first new input channel) set to zero."""
    own, out = module.state_dict(), dict(state)
    for key, saved in state.items():
        target = own.get(key)
        if not key.startswith(prefix) or target is None or saved.shape == target.shape:
            continue
        if saved.dim() != target.dim() or any(a > b for a, b in zip(saved.shape, target.shape)):
            raise ValueError(f"{key} of shape {tuple(saved.shape)} does not fit into {tuple(target.shape)}")
        grown = target.detach().clone()
        grown[tuple(slice(0, n) for n in saved.shape)] = saved
        out[key] = grown
    for key, first_new in readers:
        out[key] = out[key].clone()
        out[key][:, first_new:] = 0
    return out


def widen_decoder_state(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` of a FastTransformNet with a narrower decoder, grown to ``module``'s decoder width so that
    ``module`` computes what the saved network did: each decoder tensor keeps its saved values in its
    leading channels and ``module``'s own fresh values in the new ones (new norm rows are 1 and 0), and
    the new channels' readers (the next convolution's weights on them) start at zero. They learn as the
    zero-initialised block of start_as_identity does: the zeroed weights get a gradient at once, the new
    channels behind them as soon as those weights move."""
    old = state["decoder.2.weight"].shape[0]  # the saved decoder's channels at half resolution
    return _widen_state(state, module, "decoder.", (("decoder.2.weight", 2 * old), ("decoder.6.weight", old)))


def widen_encoder_state(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """As widen_decoder_state, for the encoder's first convolution (its channels at half resolution): the
    new channels' reader, the stride-2 convolution to quarter resolution, starts at zero on them."""
    old = state["encoder.0.weight"].shape[0]
    return _widen_state(state, module, "encoder.", (("encoder.3.weight", old),))


class StyledNetwork(nn.Module):
    """A network whose instance norms are conditional: ``forward(x, style)`` with ``style`` as in
    CondInstanceNorm2d (None for a single-style network)."""

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        with styled(self, style):
            return self.body(x)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ConvLayer(nn.Sequential):
    """Reflection-padded convolution, optionally followed by (conditional) instance norm and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True,
                 styles: int = 1, conv: type[nn.Conv2d] = nn.Conv2d):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), conv(cin, cout, kernel, stride)]
        if norm:
            layers.append(CondInstanceNorm2d(cout, styles))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ChannelsLastConv2d(nn.Conv2d):
    """A convolution that trains in channels-last layout on the CPU. oneDNN's backward pass of the full
    net's 9×9 output convolution (32 → 3 channels at full resolution) is slow in the default layout:
    measured on the 2-core build machine, forward 42.7 → 33.3 ms and backward 225.5 → 68.1 ms per 256-px
    crop with the layout changes included, the same numbers to float rounding. The 3×3 convolutions are
    slower channels-last, so only this one changes, and only where it pays: CPU training. Inference and
    export see a plain convolution (same parameters, same state-dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or not torch.is_grad_enabled() or torch.onnx.is_in_onnx_export():
            return super().forward(x)
        cl = torch.channels_last
        y = F.conv2d(x.contiguous(memory_format=cl), self.weight.contiguous(memory_format=cl), self.bias,
                     self.stride, self.padding, self.dilation, self.groups)
        return y.contiguous()


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, styles: int = 1):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3, styles=styles),
                                  ConvLayer(channels, channels, 3, relu=False, styles=styles))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Sequential):
    """Nearest ×2 upsampling then a convolution: no transposed convolutions, so no checkerboard."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, styles: int = 1):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(cin, cout, kernel, styles=styles))


class TransformNet(StyledNetwork):
    """Encoder (9×9 stem, two stride-2 convs), ``depth`` residual blocks, decoder (two upsample+conv, 9×9 out)."""

    size_multiple = 4
    # Reflection padding inside does not stop the style loss from painting a frame at the picture's
    # edge (starry_night: a dark band). The runtime mirrors the input by this margin and crops it off
    # (modelmeta.BORDER). Measured on 4 validation photos at 384 px against a 64-px margin, mean change
    # in the outer 24 px (interior in brackets), no margin → 16 px: starry_night 21.6 (7.3) → 6.2 (5.1),
    # great_wave 11.3 (8.6) → 4.8 (5.2), composition_viii 8.0 (5.9) → 3.3 (3.4), the_scream 5.4 (3.6)
    # → 2.5 (2.2). It costs 14 % more pixels at 640×360.
    runtime_border = RUNTIME_BORDER

    def __init__(self, width: int = 32, depth: int = 5, styles: int = 1):
        super().__init__()
        w, n = width, styles
        self.width, self.depth = width, depth
        self.encoder = nn.Sequential(ConvLayer(3, w, 9, styles=n), ConvLayer(w, 2 * w, 3, stride=2, styles=n),
                                     ConvLayer(2 * w, 4 * w, 3, stride=2, styles=n))
        self.residuals = nn.Sequential(*[ResidualBlock(4 * w, n) for _ in range(depth)])
        self.decoder = nn.Sequential(
            UpsampleConv(4 * w, 2 * w, styles=n), UpsampleConv(2 * w, w, styles=n),
            ConvLayer(w, 3, 9, norm=False, relu=False, conv=ChannelsLastConv2d)
        )

    # The decoder emits pixels in 0..255 units, as in the reference implementation, and we scale them
    # to [0, 1]. This scale sets how far one optimizer step moves the output: emitting [0, 1] directly
    # makes each Adam step 255× larger relative to the pixel range, which trains unstably (colour
    # blobs, no style after hundreds of iterations).
    output_scale = 1.0 / 255.0

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.residuals(self.encoder(x))) * self.output_scale


class SeparableResidualBlock(nn.Module):
    """Residual block of two depthwise-separable 3×3 convolutions (MobileNet style) with one instance norm:
    a ninth of the multiply-adds of a dense block, and one normalisation instead of two because each
    InstanceNormalization is a layout change plus two passes over memory in ONNX Runtime on CPU."""

    def __init__(self, channels: int, norm: bool = True, styles: int = 1):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1),
            CondInstanceNorm2d(c, styles) if norm else nn.Identity(), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, groups=c), nn.Conv2d(c, c, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def fast_half_width(width: int, chosen: int = 0) -> int:
    """The fast network's channels at half resolution, in its encoder (``encoder_width``) or its decoder
    (``decoder_width``, twice that out of the 1×1 at quarter resolution): ``chosen``, or with 0 (the
    default) ``width // 8``, at least 4."""
    return chosen or max(4, width // 8)


class FastTransformNet(StyledNetwork):
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
    al. 2016): a constant image stays constant (tests/test_tiers.py). On a picture that is not constant
    a fainter 4-pixel grid remains possible, in both tiers: nearest upsampling passes the spectral images
    of the quarter-resolution features at every multiple of 1/4 cycle a pixel, and the style loss keeps
    them. The shipped great_wave and composition_viii drew one over flat areas; ``lattice_weight``
    (losses.lattice_loss) trains it away.

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

    def __init__(self, width: int = 64, depth: int = 4, residual_norm: bool = True, styles: int = 1,
                 decoder_width: int = 0, encoder_width: int = 0):
        super().__init__()
        self.width, self.depth = width, depth
        # The first convolution is the network's narrowest point: 8 channels at half resolution hold two
        # numbers a pixel where the photo has three. encoder_width widens it; 16, trained on from the
        # shipped weights, kept no more of the photo (stages/multi/README.md, "A wider first convolution").
        half, n = fast_half_width(width, encoder_width), styles
        self.encoder = nn.Sequential(
            nn.Conv2d(3, half, 3, 2, 1), CondInstanceNorm2d(half, n), nn.ReLU(inplace=True),
            nn.Conv2d(half, width, 3, 2, 1), CondInstanceNorm2d(width, n), nn.ReLU(inplace=True),
        )
        half = fast_half_width(width, decoder_width)
        self.residuals = nn.Sequential(*[SeparableResidualBlock(width, residual_norm, n) for _ in range(depth)])
        self.decoder = nn.Sequential(
            nn.Conv2d(width, 2 * half, 1), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(2 * half, half, 3, padding=1), CondInstanceNorm2d(half, n), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(half, 3, 3, padding=1),
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
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
        loaded = getattr(self, "_loaded_phases", None)
        if loaded is not None and torch.equal(loaded[1], d[6].weight) and torch.equal(loaded[2], d[6].bias):
            # read back from a file and not trained since: its own phase weights, bit for bit (the round
            # trip through the plain convolution would change their last bits)
            last = loaded[0]
        else:
            last = nearest_up_conv_as_phases(d[6], self.output_scale, self.output_offset)
        return _PhaseForm(nn.Sequential(self.encoder, self.residuals, *d[:5], last)).eval()

    def load_export_form(self, state: dict[str, torch.Tensor]) -> None:
        """Load the weights of an ``export_form()`` (e.g. read back from an exported file): the inverse."""
        state = {k.removeprefix("net."): v for k, v in state.items()}
        last = nn.Conv2d(self.decoder[6].in_channels, 4 * 3, 3, padding=1)
        last.load_state_dict({"weight": state.pop("7.weight"), "bias": state.pop("7.bias")})
        conv = phases_as_nearest_up_conv(last, self.output_scale, self.output_offset)
        own = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            part = {"0": "encoder", "1": "residuals"}.get(head)
            own[f"{part}.{rest}" if part else f"decoder.{int(head) - 2}.{rest}"] = value
        own.update({"decoder.6.weight": conv.weight.detach(), "decoder.6.bias": conv.bias.detach()})
        self.load_state_dict(own)
        d6 = self.decoder[6]
        self._loaded_phases = (last, d6.weight.detach().clone(), d6.bias.detach().clone())


class _PhaseForm(StyledNetwork):
    def __init__(self, net: nn.Sequential):
        super().__init__()
        self.net = net

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


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


def phases_as_nearest_up_conv(phases: nn.Conv2d, scale: float = 1.0, offset: float = 0.0) -> nn.Conv2d:
    """The inverse of ``nearest_up_conv_as_phases``: the 3×3 convolution whose phase form is ``phases``.
    Along an axis, tap 0 is read alone by phase 0's row u = 0 and tap 2 alone by phase 1's row u = 2;
    tap 1 is phase 0's row u = 1 less tap 2."""
    c_in, c_out = phases.in_channels, phases.out_channels // 4
    p = (phases.weight.detach() / scale).reshape(2, 2, c_out, c_in, 3, 3)  # a, b, c, i, u, v
    # rows: taps t along u, for every column phase b and column v → b, c, i, t, v
    row2 = p[1, :, :, :, 2, :]
    rows = torch.stack([p[0, :, :, :, 0, :], p[0, :, :, :, 1, :] - row2, row2], 3)
    # columns: taps s along v → c, i, t, s
    col2 = rows[1, ..., 2]
    w = torch.stack([rows[0, ..., 0], rows[0, ..., 1] - col2, col2], 3)
    conv = nn.Conv2d(c_in, c_out, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(w)
        conv.bias.copy_((phases.bias.detach()[:c_out] - offset) / scale)
    return conv


ARCHS = {"full": TransformNet, "fast": FastTransformNet}


def build_model(arch: str, width: int, depth: int, residual_norm: bool = True, styles: int = 1,
                decoder_width: int = 0, encoder_width: int = 0) -> nn.Module:
    """The network of a tier: ``full`` (Johnson et al.) or ``fast`` (quarter-resolution, separable), with
    ``styles`` rows in each conditional instance norm. ``residual_norm=False`` (fast only) leaves instance
    norm out of the residual blocks; ``decoder_width`` and ``encoder_width`` (fast only, 0: its default)
    set the decoder's and the encoder's channels at half resolution."""
    if arch == "fast":
        return FastTransformNet(width, depth, residual_norm, styles, decoder_width, encoder_width)
    if not residual_norm:
        raise ValueError(f"residual_norm=False is a setting of the fast arch, not {arch!r}")
    if decoder_width or encoder_width:
        raise ValueError(f"decoder_width and encoder_width are settings of the fast arch, not {arch!r}")
    return ARCHS[arch](width, depth, styles)


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


def forward_with_border(net: nn.Module, x: torch.Tensor, border: int, style: torch.Tensor | None = None) -> torch.Tensor:
    """``net(x, style)`` as the runtime stylizer runs it: ``x`` mirrored by ``border`` pixels on every side
    (edge copies when the picture is too small to mirror), the output cropped back to ``x``'s size."""
    if border <= 0:
        return net(x, style)
    h, w = x.shape[-2:]
    y = net(F.pad(x, (border,) * 4, mode="reflect" if border < min(h, w) else "replicate"), style)
    return y[..., border:border + h, border:border + w]
