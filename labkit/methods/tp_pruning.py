"""Torch-Pruning (DepGraph) structured pruning of the course's classifier, beside NNI's: the same widths, the same
training budget, the same control.

Torch-Pruning traces the model once and collects *groups*: the parameters that must lose the same channels
together (conv3's output channels with fc1's input columns, fc1's neurons with fc2's inputs). A criterion ranks each
group's channels and the pruner removes the lowest in place: no masks and no speed-up step, unlike NNI.
`tp.pruner.MetaPruner` is a deprecated name of `tp.pruner.BasePruner` in 1.6; the lab calls the latter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from labkit.errors import LabkitError
from labkit.methods.compress import check_sparsity

if TYPE_CHECKING:  # torch loads in the notebook kernel, not in the runner that checks task names
    import torch
    from torch import nn

CRITERIA = {
    "magnitude": "the L2 norm of each channel's weights over its whole group (GroupMagnitudeImportance)",
    "taylor": "|w · ∂L/∂w| summed over each channel's group, a first-order estimate of the loss change when the "
              "channel goes (GroupTaylorImportance; gradients from training samples)",
}


def _prunable() -> tuple[type, ...]:
    from torch import nn

    return nn.Conv2d, nn.Linear


def check_criterion(criterion: str) -> str:
    """A known criterion name, or a one-line LabkitError naming the known ones."""
    if criterion not in CRITERIA:
        raise LabkitError(f"unknown Torch-Pruning criterion {criterion!r}: use one of {', '.join(CRITERIA)}")
    return criterion


def importance(criterion: str):
    """Torch-Pruning's importance estimator for a criterion (group mean, normalised by the mean: its defaults)."""
    import torch_pruning as tp

    estimators = {"magnitude": lambda: tp.importance.GroupMagnitudeImportance(p=2),
                  "taylor": tp.importance.GroupTaylorImportance}
    return estimators[check_criterion(criterion)]()


def kept_channels(channels: int, sparsity: float) -> int:
    """How many of a layer's channels survive at `sparsity`, by NNI's rule: it removes int(sparsity · channels)."""
    return channels - int(check_sparsity(sparsity) * channels)


def layer_ratios(model: nn.Module, example_inputs: torch.Tensor, sparsity: float,
                 ignored: list[nn.Module]) -> dict[nn.Module, float]:
    """Each layer that roots a dependency group (the ignored ones aside), with the pruning ratio that leaves it NNI's
    width at `sparsity`.

    Torch-Pruning keeps int(channels · (1 − ratio)), NNI removes int(sparsity · channels): at 0.3 of 8 channels one
    keeps 5, the other 6. A ratio half a channel short of NNI's count gives NNI's width, clear of float rounding.
    """
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    ratios = {}
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=list(_prunable())):
        layer = group[0].dep.target.module
        channels = graph.get_out_channels(layer)
        removed = channels - kept_channels(channels, sparsity)
        ratios[layer] = (removed - 0.5) / channels if removed else 0.0
    return ratios


def make_pruner(model: nn.Module, criterion: str, sparsity: float, example_inputs: torch.Tensor,
                ignored: Iterable[str] = ("fc2",)):
    """A local (per-layer) Torch-Pruning pruner: every layer of the dependency graph loses `sparsity` of its channels,
    as NNI's config list asks, the named layers (the classifier output) keep theirs. `pruner.step()` prunes."""
    import torch_pruning as tp

    skip = [getattr(model, name) for name in ignored]
    return tp.pruner.BasePruner(model, example_inputs, importance(criterion), global_pruning=False,
                                pruning_ratio=check_sparsity(sparsity),
                                pruning_ratio_dict=layer_ratios(model, example_inputs, sparsity, skip),
                                ignored_layers=skip)


def loss_gradients(model: nn.Module, loader, max_samples: int) -> int:
    """Sum the loss gradients over at least `max_samples` samples of `loader` into `.grad`, without changing a
    weight: the statistics of the Taylor criterion (as Torch-Pruning's own benchmark collects them). Returns the
    samples seen."""
    from torch import nn

    model.zero_grad(set_to_none=True)
    model.train()
    criterion, seen = nn.CrossEntropyLoss(), 0
    for x, y in loader:
        criterion(model(x), y).backward()
        seen += len(y)
        if seen >= max_samples:
            break
    return seen


def groups(model: nn.Module, example_inputs: torch.Tensor, ignored: Iterable[str] = ("fc2",)) -> list[dict[str, Any]]:
    """The dependency groups Torch-Pruning finds in `model`: per group its root layer, its channel count and every
    layer it couples (which of their weights lose the same channels)."""
    import torch_pruning as tp

    names = {module: name for name, module in model.named_modules()}
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    found = []
    for group in graph.get_all_groups(ignored_layers=[getattr(model, n) for n in ignored],
                                      root_module_types=list(_prunable())):
        root = group[0].dep.target.module
        coupled = [f"{names[dep.target.module]} {_side(graph, dep.handler)}" for dep, _ in group
                   if dep.target.module in names]
        found.append({"root": names[root], "channels": graph.get_out_channels(root),
                      "coupled": list(dict.fromkeys(coupled))})
    return sorted(found, key=lambda g: list(names.values()).index(g["root"]))


def _side(graph, handler) -> str:
    return "outputs" if graph.is_out_channel_pruning_fn(handler) else "inputs"


def pruning_log(groups_before: list[dict[str, Any]], model: nn.Module, criterion: str, sparsity: float) -> str:
    """What the pruner did, group by group: the layers coupled and the channels kept of each root layer."""
    widths = {name: list(m.weight.shape)[0] for name, m in model.named_modules() if isinstance(m, _prunable())}
    lines = [f"Torch-Pruning, criterion {criterion}, sparsity {sparsity:g} per layer (the output layer kept)"]
    for group in groups_before:
        lines.append(f"group {group['root']}: {group['channels']} -> {widths[group['root']]} channels; coupled: "
                     + ", ".join(group["coupled"]))
    return "\n".join(lines) + "\n"
