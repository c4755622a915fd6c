"""A detector, layer by layer: output shape, hop, receptive field, parameters, multiply-adds.

One row per operation in forward order: the model's top-level modules, with a
``Sequential`` of time blocks (``blocks``, ``conv2d``) opened into one row per
block. The time columns come from ``geometry.cumulative(model.time_layers)``:
each row takes the time layers it performs (a module that lists its own
``time_layers``, or one named like the next time layer, e.g. ``filterbank``,
``pool``, ``downsample``); rows that do not touch time (norms, the 1x1 head)
keep the hop and receptive field of the row above. Every time layer must land
on exactly one row, or the summary refuses to print a table that would lie.

Shapes, parameters and multiply-adds are measured, not computed: forward hooks
record each row's output shape on ``seconds`` of input, and the conv/linear
multiply-adds per row by ``geometry.macs_per_second_by_part`` (the counter
behind ``geometry.macs_per_second``, so the totals agree with it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from audioconv import geometry
from audioconv.geometry import TimeLayer
from audioconv.models.base import Detector


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # module class
    output_shape: tuple[int, ...]  # one item (no batch axis), time last
    time_layers: tuple[TimeLayer, ...]  # time operations performed by this row
    hop: int  # samples between output frames, after this row
    receptive_field: int  # samples behind one output frame, after this row
    parameters: int
    macs_per_second: float  # conv/linear multiply-adds per second of audio


def operations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level modules; a Sequential whose children all know their time layers is opened up."""
    rows = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential) and len(child) and all(hasattr(c, "time_layers") for c in child):
            rows += [(f"{name}.{i}", block) for i, block in enumerate(child)]
        else:
            rows.append((name, child))
    return rows


def _forward_order(model: Detector, modules: list[tuple[str, nn.Module]], num_samples: int) -> dict[str, tuple[int, ...]]:
    """Run the model once; return each called module's output shape, in call order.

    A module that gives no tensor in eval mode (the training-only VTLP warp gives ``None``) has no row.
    """
    shapes: dict[str, tuple[int, ...]] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor | None) -> None:
            if isinstance(output, torch.Tensor):
                shapes.setdefault(name, tuple(output.shape[1:]))

        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in modules]
    try:
        with torch.no_grad():
            model(torch.zeros(1, num_samples))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def summarize(model: Detector, seconds: float = 1.0, mac_seconds: float = 4.0) -> list[Row]:
    """Rows in forward order. Shapes for ``seconds`` of input (at least one receptive field)."""
    modules = operations(model)
    num_samples = max(int(seconds * model.sample_rate), model.receptive_field)
    was_training = model.training
    model.eval()
    try:
        shapes = _forward_order(model, modules, num_samples)
        macs = geometry.macs_per_second_by_part(model, modules, model.sample_rate, mac_seconds)
    finally:
        model.train(was_training)

    by_name = dict(modules)
    cumulative = geometry.cumulative(model.time_layers)
    rows, position, hop, field = [], 0, 1, 1
    for name in shapes:  # call order
        module = by_name[name]
        if hasattr(module, "time_layers"):
            count = len(module.time_layers)
        elif position < len(cumulative) and cumulative[position][0].name == name.split(".")[-1]:
            count = 1
        else:
            count = 0
        taken = cumulative[position : position + count]
        if hasattr(module, "time_layers") and [t[0] for t in taken] != list(module.time_layers):
            raise ValueError(f"{name}: its time layers do not follow the model's time_layers in forward order")
        if taken:
            _, hop, field = taken[-1]
        position += count
        parameters = sum(p.numel() for p in module.parameters() if p.requires_grad)
        rows.append(Row(name, type(module).__name__, shapes[name], tuple(t[0] for t in taken), hop, field, parameters, macs[name]))
    if position != len(cumulative):
        missing = [layer.name for layer, _, _ in cumulative[position:]]
        raise ValueError(f"time layers {missing} match no module of {type(model).__name__}")
    unused = set(by_name) - set(shapes)
    if any(sum(p.numel() for p in by_name[name].parameters()) for name in unused):
        raise ValueError(f"modules with parameters never called in forward: {sorted(unused)}")
    return rows


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.0f}"


def format_table(rows: list[Row], sample_rate: int, seconds: float = 1.0) -> str:
    """A plain-text table with a totals line; time columns in samples and milliseconds."""
    header = ("layer", "type", f"output ({seconds:g} s in)", "hop", "hop ms", "RF", "RF ms", "params", "MACs/s")
    lines = []
    for row in rows:
        shape = "x".join(str(n) for n in row.output_shape)
        lines.append(
            (
                row.name,
                row.kind,
                shape,
                str(row.hop),
                f"{1000 * row.hop / sample_rate:g}",
                str(row.receptive_field),
                f"{1000 * row.receptive_field / sample_rate:g}",
                f"{row.parameters:,}",
                _si(row.macs_per_second),
            )
        )
    last = rows[-1]
    total = (
        "total",
        "",
        "",
        str(last.hop),
        f"{1000 * last.hop / sample_rate:g}",
        str(last.receptive_field),
        f"{1000 * last.receptive_field / sample_rate:g}",
        f"{sum(r.parameters for r in rows):,}",
        _si(sum(r.macs_per_second for r in rows)),
    )
    widths = [max(len(line[i]) for line in [header, *lines, total]) for i in range(len(header))]
    left = {0, 1, 2}  # text columns; numbers right-aligned

    def render(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(render(header))
    body = [render(header), rule, *map(render, lines), rule, render(total)]
    body.append("hop and RF (receptive field) in samples; MACs/s: conv and linear multiply-adds per second of audio")
    body.append("(FFT, mel matrix, norms and pooling not counted)")
    return "\n".join(body)
