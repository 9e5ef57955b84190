"""Models no one here wrote: torchvision's classifiers (random weights, eval mode, small inputs) and Hugging Face
transformers' BERT, GPT-2, LLaMA, BART, T5 and ViT (small configs, their defaults). A few representative models per
family run in CI; ``benchmarks/bench_models.py`` runs and times the whole list."""

from __future__ import annotations

import re

import pytest
import torch

from nonlin_explorer import UnitState, average_path_length, collapse, core_network, gates, linearize, unit_graph
from nonlin_explorer.graph import UnsupportedOperationError, using_nonlinear_policy
from nonlin_explorer.torchvision_compat import CLASSIFIERS, has_compiled_ops, import_torchvision

tv = import_torchvision()  # setup installs torchvision; with the CPU torch its compiled ops do not load
import transformers as T  # noqa: E402  (after the guard: transformers imports torchvision)


def _small_vit():
    return tv.models.vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                          hidden_dim=32, mlp_dim=64, num_classes=10)


#: (name, builder, input size, the gate kinds linearize must find, the fixed nonlinear layer kinds the unit graph
#: must hold: ungated activations, norms, softmax, max-pool, products; see FIXED_NONLINEAR)
MODELS = [
    ("resnet18", lambda: tv.models.resnet18(num_classes=10), 32, {"relu"}, {"max_pool"}),
    ("shufflenet_v2_x0_5", lambda: tv.models.shufflenet_v2_x0_5(num_classes=10), 32, {"relu"}, {"max_pool"}),
    ("mobilenet_v2", lambda: tv.models.mobilenet_v2(num_classes=10), 32, {"relu6"}, set()),
    ("mobilenet_v3_small", lambda: tv.models.mobilenet_v3_small(num_classes=10), 32, {"relu", "hardswish"},
     {"activation", "product"}),  # squeeze-excitation: a Hardsigmoid scales the channels
    ("efficientnet_b0", lambda: tv.models.efficientnet_b0(num_classes=10), 32, {"silu"}, {"activation", "product"}),
    # ConvNeXt: its layer scale multiplies by a parameter, which is linear (no product)
    ("convnext_tiny", lambda: tv.models.convnext_tiny(num_classes=10), 32, {"gelu"}, {"norm"}),
    ("vit (2 layers)", _small_vit, 32, {"gelu"}, {"norm", "softmax", "product"}),
]


def _build(build):
    """The model in eval mode, with zero-initialized Linear layers (ViT's head) made random and ConvNeXt's layer
    scales (1e-6 at init) set to 1: a (near) zero map would hide every change a toggle makes."""
    torch.manual_seed(0)
    model = build().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.fill_(1.0)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.any():
            torch.nn.init.normal_(m.weight, std=0.02)
    return model


def _changed(y: torch.Tensor, reference: torch.Tensor) -> bool:
    """Whether ``y`` differs from ``reference`` by more than rounding, relative to its size (random-weight nets
    output tiny logits)."""
    return bool((y - reference).abs().max() > 1e-5 * reference.abs().max())


def test_the_import_guard_loads_torchvision_models_even_without_its_compiled_ops():
    assert hasattr(tv.models, "resnet18")
    if not has_compiled_ops():
        with pytest.raises(RuntimeError, match="C\\+\\+ ops|torchvision::nms|not exist"):
            tv.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)


@pytest.mark.parametrize("name,build,size,kinds,fixed", MODELS, ids=[m[0] for m in MODELS])
def test_torchvision_models_linearize_toggle_and_analyse(name, build, size, kinds, fixed):
    model = _build(build)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        reference = model(x)
    model = linearize(model, x).eval()
    gate_list = gates(model)
    assert {g.kind for g in gate_list} == kinds
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference, rtol=0, atol=0)  # alpha = 0 is the original, exactly

    graph = unit_graph(model, x)
    apl_all = average_path_length(model, x, graph=graph)
    half = gate_list[: len(gate_list) // 2]
    for g in half:
        g.set_linear()
    with torch.no_grad():
        assert _changed(model(x), reference)  # a toggle changes the function
    apl_half = average_path_length(model, x, graph=graph)
    for g in gate_list:
        g.set_linear()
    apl_none = average_path_length(model, x, graph=graph)
    assert apl_all > apl_half > apl_none >= 0  # monotone in the set of linear gates
    # What has no gate stays nonlinear: APL is 0 only when nothing nonlinear is left.
    assert {layer.kind for layer in graph.gate_layers} - {"gate"} == fixed
    assert (apl_none > 0) == bool(fixed)
    assert core_network(model, graph=graph).apl_normalized == pytest.approx(apl_none)
    with using_nonlinear_policy(["activation"]):  # gates and ungated activations only
        assert (average_path_length(model, x) > 0) == ("activation" in fixed)
    for g in gate_list:
        g.set_nonlinear()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference, rtol=0, atol=0)  # and back, exactly

    for g in half:
        g.set_linear()
    result = collapse(model, x, timing_repeats=0)
    with torch.no_grad():
        y = model(x)
        assert (result.model(x) - y).abs().max() <= 1e-4 * y.abs().max()  # the same function, to rounding


def test_channel_shuffle_moves_units_between_branches():
    """ShuffleNet-V2's view(b, 2, c/2, h, w) -> transpose -> view: units keep their identity through the shuffle."""
    model = linearize(tv.models.shufflenet_v2_x0_5(num_classes=10).eval(), torch.randn(1, 3, 32, 32))
    graph = unit_graph(model, torch.randn(1, 3, 32, 32))
    shuffles = [e for e in graph.edges if e.kind == "index" and graph.layers[e.dst].kind == "reshape"
                and e.src_index is not None and not (e.src_index == sorted(e.src_index)).all()]
    assert shuffles, "no permuting edge found: the shuffle was not traced as a permutation"
    for e in shuffles:
        assert sorted(e.src_index.tolist()) == list(range(graph.layers[e.src].size))  # a permutation


# -- Hugging Face transformers -----------------------------------------------------------------------------------
# Built as their docs build them: ``XModel(XConfig(...))`` with the config's defaults (the key/value cache on, the
# default attention implementation, ``return_dict`` on: they return ModelOutput objects), called on token ids (T5 on
# ``(input_ids, None, decoder_input_ids)``, ViT on pixels). Small sizes; no download.
def _ids():
    return torch.randint(0, 50, (1, 8))


HF = [
    ("bert", lambda: T.BertModel(T.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2,
                                              num_attention_heads=2, intermediate_size=64,
                                              max_position_embeddings=16)), _ids, {"geluactivation"}, 64),
    ("bert relu", lambda: T.BertModel(T.BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=2, intermediate_size=64,
                                                   max_position_embeddings=16, hidden_act="relu")), _ids, {"relu"}, 64),
    ("gpt2", lambda: T.GPT2Model(T.GPT2Config(vocab_size=50, n_embd=32, n_layer=2, n_head=2, n_positions=16,
                                              bos_token_id=0, eos_token_id=0)), _ids, {"newgeluactivation"}, 128),
    ("llama", lambda: T.LlamaModel(T.LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                                                 num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                                 max_position_embeddings=16)), _ids, {"siluactivation"}, 64),
    ("bart", lambda: T.BartModel(T.BartConfig(vocab_size=50, d_model=32, encoder_layers=2, decoder_layers=2,
                                              encoder_attention_heads=2, decoder_attention_heads=2,
                                              encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=16)),
     _ids, {"geluactivation"}, 64),
    ("t5", lambda: T.T5Model(T.T5Config(vocab_size=50, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2)),
     lambda: (_ids(), None, _ids()), {"relu"}, 64),
    ("vit", lambda: T.ViTModel(T.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64)),
     lambda: torch.randn(1, 3, 32, 32), {"geluactivation"}, 64),
]
_HF_IDS = [m[0] for m in HF]


def _hidden(model, x) -> torch.Tensor:
    out = model(*x) if isinstance(x, tuple) else model(x)
    return out.last_hidden_state


@pytest.mark.parametrize("name,build,example,kinds,ffn_width", HF, ids=_HF_IDS)
def test_hugging_face_models_linearize_exactly_and_toggle(name, build, example, kinds, ffn_width):
    model = _build(build)
    x = example()
    with torch.no_grad():
        reference = _hidden(model, x)
    model = linearize(model, x).eval()
    ffn = [g for g in gates(model) if g.kind in kinds]
    layers = 4 if name in ("bart", "t5") else 2  # encoder and decoder layers
    assert len(ffn) == layers and all(g.num_units == ffn_width for g in ffn)  # one per FFN, a unit per FFN feature
    with torch.no_grad():
        torch.testing.assert_close(_hidden(model, x), reference, rtol=0, atol=0)
        for g in ffn:
            g.set_linear()
        assert _changed(_hidden(model, x), reference)


@pytest.mark.parametrize("name,build,example,kinds,ffn_width", HF, ids=_HF_IDS)
def test_hugging_face_unit_graphs_count_attention_norms_and_products(name, build, example, kinds, ffn_width):
    """Traced with the example's shapes (their shape arithmetic runs on real sizes) and the cache off for the trace
    only; attention (with cross-attention's keys from the encoder), norms and GPT-2's Conv1D are leaves by class
    name. APL is monotone and stays > 0 with every gate linear (softmax, norms, products remain)."""
    x = example()
    model = linearize(_build(build), x)
    uses_cache = getattr(model.config, "use_cache", None)
    graph = unit_graph(model, x)
    assert getattr(model.config, "use_cache", None) == uses_cache  # put back after the trace
    fixed = {layer.kind for layer in graph.gate_layers} - {"gate"}
    assert {"softmax", "product", "norm"} <= fixed
    ffn = [g for g in gates(model) if g.kind in kinds]
    apl = [average_path_length(model, x)]
    for g in ffn:
        g.set_linear()
        apl.append(average_path_length(model, x))
    assert all(a > b for a, b in zip(apl, apl[1:])) and apl[-1] > 0, apl
    assert core_network(model, x).apl_normalized == pytest.approx(apl[-1])
    # Collapse is exact, or refuses clearly: it keeps a model for any input shape, so code that slices or builds
    # tensors by sizes (BERT's position ids, BART's attention mask) cannot be collapsed.
    try:
        result = collapse(model, x, timing_repeats=0)
    except UnsupportedOperationError as exc:
        assert name not in ("gpt2", "llama", "t5", "vit"), exc  # these always collapse
        assert re.search(r"could not trace .*\(at modeling_\w+\.py:\d+", str(exc)), exc
    else:
        with torch.no_grad():
            y = _hidden(model, x)
            out = result.model(*x) if isinstance(x, tuple) else result.model(x)
            assert (out["last_hidden_state"] - y).abs().max() <= 1e-4 * y.abs().max()


def test_a_model_that_cannot_be_traced_names_its_line_and_the_setting_in_one_line():
    """A cache passed in by the caller cannot be recorded: the error is one line naming the model's line and
    ``use_cache=False``, not fx's trace."""
    model = _build(HF[2][1])
    with pytest.raises(UnsupportedOperationError) as info:
        average_path_length(model, (_ids(), T.DynamicCache()))
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    assert re.search(r"GPT2Model \(at modeling_gpt2\.py:\d+ .*use_cache=False", message), message


@pytest.mark.parametrize("name", ["resnet50", "vit_b_16"])
def test_the_network_view_takes_a_big_torchvision_model(name):
    """The view of a model of 20,000-40,000 units (drawn as layer strips in the browser beyond 10,000): every gate is
    a layer with its units, residual blocks are found, and a unit toggled from the view reaches its gate."""
    from nonlin_explorer.ui import NetworkView

    size = 224 if name == "vit_b_16" else 64
    x = torch.randn(1, 3, size, size)
    model = linearize(getattr(tv.models, name)().eval(), x)
    gate_list = gates(model)
    view = NetworkView(model)
    try:
        assert [layer["units"] for layer in view.layers] == [g.num_units for g in gate_list]
        assert sum(layer["units"] for layer in view.layers) > 10_000
        if name == "resnet50":
            assert len(view.blocks) == 16  # its bottleneck blocks
        view.toggle(gate_list[3].name, [0, 1], UnitState.LINEAR)
        assert gate_list[3].state[:3].tolist() == [1, 1, 0]
        assert view.wait_idle()
        start = sum(g.num_units for g in gate_list[:3])
        assert view.states[start:start + 3].tolist() == [1, 1, 0]
    finally:
        view.close()


#: The whole classification zoo (minutes): ``pytest -m zoo tests/test_real_architectures.py``. CI runs the
#: representative models above; benchmarks/bench_models.py times every analysis on the same list.
ZOO = sorted(CLASSIFIERS)


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO)
def test_every_torchvision_classification_family(name):
    size, kwargs = CLASSIFIERS[name]
    model = _build(lambda: getattr(tv.models, name)(**kwargs))
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        reference = model(x)
    model = linearize(model, x).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference, rtol=0, atol=0)
    graph = unit_graph(model, x)
    gate_list = gates(model)
    apl_all = average_path_length(model, x, graph=graph)
    for g in gate_list:
        g.set_linear()
    assert apl_all > average_path_length(model, x, graph=graph) >= 0
    core_network(model, graph=graph)
    for g in gate_list[len(gate_list) // 2:]:
        g.set_nonlinear()
    result = collapse(model, x, timing_repeats=0)
    with torch.no_grad():
        y = model(x)
        assert (result.model(x) - y).abs().max() <= 1e-4 * y.abs().max()
