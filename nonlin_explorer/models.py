"""Model families for the experiments. Every nonlinearity is its own ``nn.ReLU`` module, so
:func:`nonlin_explorer.linearize` swaps them in place and every gate has a readable name
(``blocks.0.relu1``)."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Sequence

import torch
from torch import nn

from nonlin_explorer.validation import check_choice, check_int, check_number

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}


def _dims_of(input_shape: Sequence[int]) -> int:
    """Spatial dimensions of a conv input shape (channels, *spatial)."""
    if len(input_shape) not in (2, 3):
        raise ValueError(f"conv models need input shape (C, L) or (C, H, W), got {tuple(input_shape)}")
    return len(input_shape) - 1


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units (ReLU, or any ``activation`` module class); inputs are flattened."""

    def __init__(self, in_features: int, num_classes: int, width: int = 128, depth: int = 3,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"MLP needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = in_features
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), activation()]
            fan_in = width
        layers.append(nn.Linear(fan_in, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """Conv-BN-ReLU stages (stride 2 after the first) for 1-D signals or 2-D images, then a linear head."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 32, depth: int = 3):
        super().__init__()
        dims = _dims_of(input_shape)
        conv, bn = _CONV[dims], _BN[dims]
        layers: list[nn.Module] = []
        c_in = input_shape[0]
        for i in range(depth):
            c_out = width * (2 ** min(i, 2))
            layers += [conv(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1, bias=False), bn(c_out),
                       nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = _POOL[dims](1)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (1x1 conv projection when the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dims: int):
        super().__init__()
        conv, bn = _CONV[dims], _BN[dims]
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = conv(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = bn(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), bn(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016): depth = 6n + 2, three stages of 16/32/64 x ``width`` channels.

    ``ResNet(depth=20)`` and ``ResNet(depth=56)`` are the paper-sized ones; 1-D inputs give Conv1d.
    """

    def __init__(self, input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10, depth: int = 20,
                 width: float = 1.0):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNet depth must be 6n + 2 with n >= 1 (8, 14, 20, 56, ...), got {depth}")
        dims = _dims_of(input_shape)
        n = (depth - 2) // 6
        widths = [max(1, int(round(c * width))) for c in (16, 32, 64)]
        self.stem = nn.Sequential(_CONV[dims](input_shape[0], widths[0], 3, padding=1, bias=False),
                                  _BN[dims](widths[0]), nn.ReLU())
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, c_out in enumerate(widths):
            for i in range(n):
                blocks.append(BasicBlock(c_in, c_out, stride=2 if (stage > 0 and i == 0) else 1, dims=dims))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = _POOL[dims](1)
        self.head = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def resnet20(input_shape=(3, 32, 32), num_classes=10, width=1.0) -> ResNet:
    return ResNet(input_shape, num_classes, depth=20, width=width)


def resnet56(input_shape=(3, 32, 32), num_classes=10, width=1.0) -> ResNet:
    return ResNet(input_shape, num_classes, depth=56, width=width)


class TransformerClassifier(nn.Module):
    """A small Transformer encoder over token sequences, predicting a class per token.

    Uses torch's own ``nn.TransformerEncoderLayer`` with ``activation=nn.ReLU()``; outputs logits of
    shape (batch, seq_len, num_classes).
    """

    def __init__(self, vocab_size: int, num_classes: int, seq_len: int, d_model: int = 64, depth: int = 2,
                 heads: int = 4, ff_width: int = 128, dropout: float = 0.0):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(torch.randn(seq_len, d_model) / math.sqrt(d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff_width, dropout=dropout, activation=nn.ReLU(),
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"TransformerClassifier expects (batch, seq_len) tokens, got {tuple(tokens.shape)}")
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        return self.head(self.encoder(h))


class Seq2SeqTransformer(nn.Module):
    """An encoder-decoder (torch's ``nn.Transformer``, ReLU feed-forward units) for inputs ``[source, decoder
    input]`` side by side (``datasets.translation``): logits for each target position, (batch, seq_len, classes).
    The decoder is causal (teacher forcing)."""

    def __init__(self, vocab_size: int, num_classes: int, seq_len: int, d_model: int = 64, depth: int = 2,
                 heads: int = 4, ff_width: int = 128, dropout: float = 0.0):
        super().__init__()
        if seq_len % 2:
            raise ValueError(f"Seq2SeqTransformer takes [source, decoder input] of equal lengths, got {seq_len}")
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        self.src_len = seq_len // 2
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_src = nn.Parameter(torch.randn(self.src_len, d_model) / math.sqrt(d_model))
        self.pos_tgt = nn.Parameter(torch.randn(self.src_len, d_model) / math.sqrt(d_model))
        self.transformer = nn.Transformer(d_model, heads, depth, depth, ff_width, dropout=dropout,
                                          activation=nn.ReLU(), batch_first=True)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(self.src_len),
                             persistent=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.shape[1] != 2 * self.src_len:
            raise ValueError(f"Seq2SeqTransformer expects (batch, {2 * self.src_len}) tokens ([source, decoder "
                             f"input]), got {tuple(tokens.shape)}")
        src, tgt = tokens[:, : self.src_len], tokens[:, self.src_len:]
        h = self.transformer(self.embed(src) + self.pos_src, self.embed(tgt) + self.pos_tgt, tgt_mask=self.causal,
                             tgt_is_causal=True)
        return self.head(h)


#: Model names accepted by :func:`build`.
MODELS = ("mlp", "cnn", "resnet", "resnet20", "resnet56", "transformer", "seq2seq")
#: Models over token sequences, what each takes, and its class: they take the vocabulary size from the dataset.
SEQUENCE_MODELS = {
    "transformer": ("token sequences (seq_len,)", TransformerClassifier),
    "seq2seq": ("[source, decoder input] tokens (2 * seq_len,)", Seq2SeqTransformer),
}


def kwargs_for(name: str, data, model_kwargs: dict) -> dict:
    """``model_kwargs`` completed from the dataset ``data``: a sequence model gets its ``vocab_size``."""
    kwargs = dict(model_kwargs)
    if data.kind == "sequence" and name.lower() in SEQUENCE_MODELS:
        kwargs.setdefault("vocab_size", data.vocab_size)
    return kwargs


def settings_of(name: str) -> tuple[str, ...]:
    """The settings (``model_kwargs`` keys) model ``name`` takes; the data give the rest (input shape, classes)."""
    name = check_choice("model", name, MODELS)
    cls = SEQUENCE_MODELS[name][1] if name in SEQUENCE_MODELS else {"mlp": MLP, "cnn": SmallCNN}.get(name, ResNet)
    given = {"self", "in_features", "input_shape", "num_classes", "seq_len"}
    if name in ("resnet20", "resnet56"):
        given.add("depth")  # in the name
    return tuple(p for p in inspect.signature(cls).parameters if p not in given)


def count_parameters(name: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> int:
    """Parameters of the model :func:`build` would make, counted on the meta device (nothing is allocated)."""
    try:
        with torch.device("meta"):
            model = build(name, input_shape, num_classes, **kwargs)
    except RuntimeError as exc:  # e.g. tensor sizes past what torch can index (width=1e12)
        what = "is too large to build" if "overflow" in str(exc) else "cannot be built"
        raise ValueError(f"{name} with {kwargs} {what} ({' '.join(str(exc).split())[:120]})") from None
    except TypeError as exc:  # a setting of the wrong type (width='wide' for a ResNet)
        raise ValueError(f"{name} cannot be built with {kwargs}: {exc}") from None
    return sum(p.numel() for p in model.parameters())


def check_fits_in_memory(name: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> int:
    """The parameter count, or ``ValueError`` when training it (weights, gradients, two Adam moments: 16 bytes a
    parameter) would not fit in this machine's memory (a width typed with too many zeros fails here, not in an
    allocator)."""
    n = count_parameters(name, input_shape, num_classes, **kwargs)
    need = 16 * n
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return n
    if need > have:
        raise ValueError(f"{name} with {kwargs} has {n:,} parameters: training needs about {need / 2**30:,.0f} GiB, "
                         f"this machine has {have / 2**30:,.0f} GiB")
    return n


#: Settings that count something (layers, heads, units, tokens): whole numbers >= 1 in every model.
_COUNTS = ("depth", "d_model", "heads", "ff_width", "vocab_size")


def _whole(name: str, value, low: int = 1) -> int:
    """A model size given as an integer (a whole float or a numpy integer is fine; 2.5 units is not)."""
    try:
        return check_int(name, value, low=low)
    except ValueError:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}") from None


def build(name: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> nn.Module:
    """Build a model by name for data of ``input_shape`` (without batch) and ``num_classes`` classes.

    ``kwargs`` go to the model (``width``, ``depth``, ...: :func:`settings_of`; any other is refused with
    ``ValueError``); transformers also need ``vocab_size``.
    """
    name = check_choice("model", name, MODELS)
    unknown = [k for k in kwargs if k not in settings_of(name)]
    if unknown:
        raise ValueError(f"model {name!r} has no setting {', '.join(map(repr, unknown))}; its settings: "
                         f"{', '.join(settings_of(name))}")
    for key, value in kwargs.items():
        if key in _COUNTS or (key == "width" and name in ("mlp", "cnn")):  # units, channels, layers: whole numbers
            kwargs[key] = _whole(key, value)
        elif key == "width":  # a ResNet's channel multiplier
            kwargs[key] = check_number("width", value, low=0.0, low_open=True)
        elif key == "dropout":
            kwargs[key] = check_number("dropout", value, low=0.0, high=0.999)
    if name == "mlp":
        return MLP(math.prod(input_shape), num_classes, **kwargs)
    if name == "cnn":
        return SmallCNN(input_shape, num_classes, **kwargs)
    if name in ("resnet", "resnet20", "resnet56"):
        if name != "resnet":
            kwargs["depth"] = int(name[6:])
        return ResNet(input_shape, num_classes, **kwargs)
    if name in SEQUENCE_MODELS:
        takes, cls = SEQUENCE_MODELS[name]
        if len(input_shape) != 1:
            raise ValueError(f"the {name} takes {takes}, got input shape {tuple(input_shape)}")
        vocab = kwargs.pop("vocab_size", None)
        if vocab is None:
            raise ValueError(f"the {name} needs vocab_size (the sequence datasets provide it)")
        return cls(vocab, num_classes, seq_len=input_shape[0], **kwargs)
    raise AssertionError(f"model {name!r} is listed in MODELS but has no builder")
