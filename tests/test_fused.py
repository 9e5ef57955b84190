"""The fused CPU gate kernels (nonlin_explorer.fused): built by the setup where a compiler exists, loaded and never
compiled at run time, run on torch's threads with the same numbers on any number of them. The piecewise-linear gates
compute the numbers the eager gates compute (the same roundings, not just close): the output and d input always, d
alpha on inputs of up to 65,536 elements (an MLP's: a run's numbers do not depend on whether the kernels are built);
on larger inputs d alpha is summed in the backward pass, equal up to rounding and closer to the exact sum. The smooth
gates (GELU, SiLU, Hardswish, ELU, SELU, Mish) equal the eager gate up to rounding, exactly the identity at alpha 1."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from nonlin_explorer import TrainingSession, fused, gate_kernels, gates
from nonlin_explorer.gates import make_gate

HAVE_TOOLS = shutil.which("c++") is not None and shutil.which("ninja") is not None
BUILT = fused.kernels() is not None
needs_kernels = pytest.mark.skipif(not BUILT, reason=f"fused kernels not available: {fused.status()['reason']}")

#: The activations the kernels cover, each with the eager path its arithmetic repeats on small and large inputs.
COVERED = [nn.ReLU(), nn.LeakyReLU(0.01), nn.LeakyReLU(0.3), nn.ReLU6(), nn.Hardtanh(-1.0, 1.0)]
#: Small (the autograd path: <= 65,536 elements) and large (prelu's or the hand-written backward) inputs, 2-D
#: features and 4-D conv maps, and an odd size.
SHAPES = [(128, 256), (256, 1024), (16, 8, 9, 9), (64, 16, 16, 16), (3, 5)]


def test_the_setup_built_the_kernels_where_a_compiler_and_ninja_exist():
    if not HAVE_TOOLS:
        pytest.skip("no c++ or ninja on PATH: the setup says so and gates run eagerly")
    assert BUILT, fused.status()
    assert gate_kernels.gate_backend()["backend"] == "fused"


def _run(act, x0, s0, grad, fused_on: bool, monkeypatch):
    monkeypatch.setenv(fused.FUSED_ENV, "1" if fused_on else "0")
    x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
    gate = make_gate(act, x0.shape[1])
    y = gate._gated(x, s)
    y.backward(grad)
    return y.detach(), x.grad, s.grad, y.grad_fn.name()


def same_numbers(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Every element the same number (NaN where the other is NaN). The sign of a zero may differ: torch itself
    rounds -0.0 differently in its vector loop and the scalar loop that finishes a row (x = -0.0, alpha = 1)."""
    return a.dtype == b.dtype and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(7.0),
                                                                                    b.nan_to_num(7.0))


def _inputs(shape, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=dtype) * 3
    x.view(-1)[:6] = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 6.0, -1.0], dtype=dtype)  # edges
    s = torch.rand(shape[1], generator=g, dtype=dtype)
    s[:3] = torch.tensor([0.0, 1.0, 0.5], dtype=dtype)  # the activation, a linear unit, lerp's switch point
    return x, s, torch.randn(shape, generator=g, dtype=dtype)


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", COVERED, ids=repr)
def test_a_fused_gate_gives_the_eager_gates_numbers(act, shape, dtype, monkeypatch):
    x, s, grad = _inputs(shape, dtype)
    *fused_out, fused_fn = _run(act, x, s, grad, True, monkeypatch)
    *eager_out, eager_fn = _run(act, x, s, grad, False, monkeypatch)
    assert "FusedGate" in fused_fn and "FusedGate" not in eager_fn
    for name, a, b in zip(("output", "d input"), fused_out, eager_out):
        assert same_numbers(a, b), (name, (a - b).abs().nan_to_num(0.0).max().item())
    a, b = fused_out[2], eager_out[2]
    if x.numel() < 65536:
        assert same_numbers(a, b), ("d alpha", (a - b).abs().nan_to_num(0.0).max().item())
    else:  # summed in the pass: the same up to rounding (NaN and inf where the eager sum has them)
        torch.testing.assert_close(a, b, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-4, equal_nan=True)


@needs_kernels
@pytest.mark.parametrize("shape", [(256, 1024), (64, 16, 32, 32), (10000, 7)], ids=str)
def test_a_large_inputs_d_alpha_summed_in_the_pass_is_at_least_as_close_to_the_exact_sum(shape, monkeypatch):
    """float32, measured against the sum in float64 of the same float32 products: the in-pass sum (float blocks
    added in double) is within 2e-7 of the largest |d alpha|, and no further off than torch's own sum."""
    g = torch.Generator().manual_seed(4)
    x, grad = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    s = torch.rand(shape[1], generator=g)
    dims = [d for d in range(len(shape)) if d != 1]
    exact = (grad * x.clamp(max=0)).double().sum(dims)
    errors = {}
    for on in ("1", "0"):
        *_, d_alpha, _ = _run(nn.ReLU(), x, s, grad, on == "1", monkeypatch)
        errors[on] = float((d_alpha.double() - exact).abs().max() / exact.abs().max())
    assert errors["1"] <= 2e-7, errors
    assert errors["1"] <= errors["0"] * 1.5 + 1e-9, errors


@needs_kernels
def test_a_nan_input_gives_nan_out_of_the_fused_gate_as_out_of_the_eager_one(monkeypatch):
    x, s, grad = _inputs((4, 16), torch.float32)
    x[1, 3] = float("nan")
    for act in COVERED:
        y_fused, *_ = _run(act, x, s, grad, True, monkeypatch)
        y_eager, *_ = _run(act, x, s, grad, False, monkeypatch)
        assert torch.isnan(y_fused[1, 3]) and torch.isnan(y_eager[1, 3])
        assert torch.equal(y_fused.nan_to_num(7.0), y_eager.nan_to_num(7.0))


@needs_kernels
def test_a_training_run_is_the_same_with_and_without_the_kernels(monkeypatch):
    """The end-to-end form: every weight, slope and recorded number of a short run agrees exactly."""
    kw = dict(dataset="spirals", dataset_kwargs={"num_samples": 400}, model="mlp", model_kwargs={"width": 16},
              epochs=3, batch_size=32, eval_every=10, sparsity=1e-2, seed=3)
    runs = []
    for on in ("1", "0"):
        monkeypatch.setenv(fused.FUSED_ENV, on)
        runs.append(TrainingSession(**kw).run(progress=False))
    a, b = runs
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for (name, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(p, q), name
    assert any(bool((g.alpha > 0).any()) for g in gates(a.model))  # the prior moved slopes: the gates were trained


@needs_kernels
def test_a_gate_with_every_unit_forced_skips_the_d_alpha_work_and_stays_exact(monkeypatch):
    x, s, grad = _inputs((64, 32), torch.float32)
    results = []
    for on in ("1", "0"):
        monkeypatch.setenv(fused.FUSED_ENV, on)
        gate = make_gate(nn.ReLU(), 32)
        gate.set_linear(range(16))
        gate.set_nonlinear(range(16, 32))
        xi = x.clone().requires_grad_()
        y = gate(xi)
        y.backward(grad)
        results.append((y.detach(), xi.grad, gate.alpha.grad))
    assert same_numbers(results[0][0], results[1][0]) and same_numbers(results[0][1], results[1][1])
    assert results[0][2] is None and results[1][2] is None


def _second_derivatives(gate_fn, x0, s0):
    x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
    y = gate_fn(x, s)
    gx, gs = torch.autograd.grad((y * y).sum(), (x, s), create_graph=True)
    return torch.autograd.grad((gx * gx).sum() + (gs * gs).sum(), (x, s))


@needs_kernels
@pytest.mark.parametrize("shape", [(8, 6), (300, 256), (40, 6, 20, 20)], ids=str)
@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.2), nn.Hardtanh(-1.0, 1.0), nn.GELU(), nn.SiLU(),
                                 nn.ELU(), nn.GELU(approximate="tanh"), nn.Mish(), nn.SELU(), nn.Hardswish()], ids=repr)
def test_a_fused_gate_is_differentiable_twice(act, shape, monkeypatch):
    """Second derivatives through the fused gate equal those of autograd through ``lerp(act(x), x, alpha)`` (up to
    rounding: the two graphs order their operations differently), on small and large inputs."""
    x0, s0, _ = _inputs(shape, torch.float64)
    x0.view(-1)[:6] = torch.linspace(-2, 2, 6, dtype=torch.float64)
    monkeypatch.setenv(fused.FUSED_ENV, "1")
    got = _second_derivatives(make_gate(act, shape[1])._gated, x0, s0)
    view = [-1 if d == 1 else 1 for d in range(len(shape))]
    expected = _second_derivatives(lambda x, s: torch.lerp(act(x), x, s.view(view)), x0, s0)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-8)  # float64; d alpha sums 16,000 terms


@needs_kernels
@pytest.mark.parametrize("case", ["non-contiguous", "float16", "bfloat16", "1-D", "Softplus", "CELU"])
def test_inputs_the_kernels_do_not_cover_run_eagerly_and_correctly(case, monkeypatch):
    monkeypatch.setenv(fused.FUSED_ENV, "1")
    act, x, units = nn.ReLU(), torch.randn(64, 32), 32
    if case == "non-contiguous":
        x = torch.randn(32, 64).t()
    elif case in ("float16", "bfloat16"):
        x = x.to(getattr(torch, case))
    elif case == "1-D":
        x = torch.randn(32)
    elif case == "Softplus":  # an activation the kernels do not know
        act = nn.Softplus()
    elif case == "CELU":  # ELU's form with an input scale, which the kernels do not take
        act = nn.CELU(0.5)
    gate = make_gate(act, units).to(x.dtype)
    with torch.no_grad():
        gate.alpha.uniform_(0, 1)
    xi = x.clone().requires_grad_()
    y = gate(xi)
    y.sum().backward()
    assert "FusedGate" not in y.grad_fn.name()
    view = gate.alpha.detach().to(x.dtype).view(-1 if x.dim() == 1 else (1, -1))
    expected = torch.lerp(act(x.float()), x.float(), view.float())
    torch.testing.assert_close(y.detach().float(), expected, rtol=1e-2, atol=1e-2)
    assert xi.grad.shape == x.shape and gate.alpha.grad.shape == (units,)


@needs_kernels
@pytest.mark.parametrize("shape", [(64, 1024), (256, 1024), (70, 16, 33, 31), (10000, 7)], ids=str)
@pytest.mark.parametrize("act", [nn.ReLU(), nn.Hardtanh(-1.0, 1.0), nn.GELU()], ids=repr)
def test_the_kernels_run_on_torchs_threads_with_the_same_numbers_on_any_number_of_them(act, shape, monkeypatch):
    """Large inputs split over threads in whole blocks, and d alpha is added in a fixed order: one thread and two give
    every number alike (the gate and GELU's fused backward alike)."""
    x, s, grad = _inputs(shape, torch.float32)
    previous, runs = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs.append(_run(act, x, s, grad, True, monkeypatch))
    finally:
        torch.set_num_threads(previous)
    (*one, fn), (*two, _) = runs
    assert act.__class__ is nn.GELU or "FusedGate" in fn
    for name, a, b in zip(("output", "d input", "d alpha"), one, two):
        assert same_numbers(a, b), name


def test_turned_off_by_the_environment_and_said_so(monkeypatch):
    monkeypatch.setenv(fused.FUSED_ENV, "0")
    assert fused.kernels() is None
    report = gate_kernels.gate_backend()
    assert report["backend"] == "eager" and "NONLIN_EXPLORER_FUSED=0" in report["fused"]
    y = make_gate(nn.ReLU(), 8)._gated(torch.randn(4, 8, requires_grad=True), torch.rand(8, requires_grad=True))
    assert "FusedGate" not in y.grad_fn.name()


def test_a_broken_library_is_not_loaded_and_gates_run_eagerly(tmp_path, monkeypatch):
    """A file at the library's path that is not a loadable library (a truncated copy, another machine's): one
    reason in the status, eager gates, no crash."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(fused.FUSED_ENV, raising=False)
    path = fused.library_path()
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x7fELF not really")
    monkeypatch.setitem(fused._STATE, "loaded", False)
    monkeypatch.setitem(fused._STATE, "module", None)
    monkeypatch.setitem(fused._STATE, "reason", None)
    assert fused.kernels() is None
    assert fused.status()["reason"].startswith("could not load")
    y = make_gate(nn.ReLU(), 8)._gated(torch.randn(4, 8, requires_grad=True), torch.rand(8, requires_grad=True))
    y.sum().backward()
    assert "FusedGate" not in y.grad_fn.name()


def test_without_a_compiler_the_build_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no c++, no ninja
    with pytest.raises(RuntimeError, match=r"^cannot build the fused gate kernels: c\+\+ and ninja not found"):
        fused.build()
    assert fused.build_and_say() == 0  # setup goes on: gates run eagerly


def test_nothing_is_compiled_at_import_or_on_first_use():
    """A fresh interpreter imports the package and runs a gate without importing torch's compiler machinery."""
    code = ("import sys, torch; import nonlin_explorer as ne; from torch import nn;"
            "g = ne.make_gate(nn.ReLU(), 8); x = torch.randn(4, 8, requires_grad=True); g(x).sum().backward();"
            "print('torch.utils.cpp_extension' in sys.modules, 'nonlin_explorer.fused' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr


@needs_kernels
def test_the_command_line_reports_the_built_kernels():
    out = subprocess.run([sys.executable, "-m", "nonlin_explorer.cli", "kernels"], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.startswith("fused gate kernels ready") and str(fused.library_path()) in out.stdout


def test_an_unusable_cache_folder_stops_the_build_in_one_line(tmp_path, monkeypatch):
    if not HAVE_TOOLS:
        pytest.skip("no c++ or ninja on PATH")
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(RuntimeError, match=r"^cannot build the fused gate kernels: ") as info:
        fused.build()
    assert "\n" not in str(info.value)
    assert fused.build_and_say() == 0


#: Smooth activations the kernels compute themselves (torch's vector math, act and act' together): forward one pass,
#: backward one pass with d alpha summed in it, on every input size.
SMOOTH_FUSED = [nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.ELU(), nn.ELU(0.5), nn.SELU(), nn.Mish(),
                nn.Hardswish()]
#: Activations the kernels do not compute: torch's forward and derivative kernel, and on large inputs LerpGate's
#: backward with its lerp and d alpha sum fused.
OUTSIDE = [nn.Tanh(), nn.Softplus(), nn.CELU(0.5)]


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", SMOOTH_FUSED, ids=repr)
def test_a_smooth_gate_runs_fused_and_equals_the_eager_gate_up_to_rounding(act, shape, dtype, monkeypatch):
    """Output and d input within a few float ulps of the eager gate (float64: at its rounding); d alpha, a sum of
    many terms, no further from the exact sum (in float64) than the eager gate's; at alpha 0 the output is the
    activation's within 1e-6 relative (the function unchanged), and no further from the exact value than torch's
    own float32 activation is."""
    x, s, grad = _inputs(shape, dtype)
    x = x.clamp(-30, 30)  # finite: torch's own kernels give NaN at +-inf for some of these (inf - inf)
    fused_out = _run(act, x, s, grad, True, monkeypatch)
    eager_out = _run(act, x, s, grad, False, monkeypatch)
    assert "FusedGate" in fused_out[3] and "FusedGate" not in eager_out[3]
    tol = dict(rtol=4e-6, atol=4e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for name, a, b in zip(("output", "d input"), fused_out[:2], eager_out[:2]):
        torch.testing.assert_close(a, b, **tol, msg=lambda m, name=name: f"{name}: {m}")
    with torch.no_grad():
        x64 = x.double()
        exact = ((x64 - act(x64)) * grad.double()).sum([d for d in range(len(shape)) if d != 1])
    errors = [float((d_alpha.double() - exact).abs().max() / exact.abs().max().clamp(min=1e-30))
              for d_alpha in (fused_out[2], eager_out[2])]
    assert errors[0] <= errors[1] * 1.5 + (1e-6 if dtype == torch.float32 else 1e-14), errors
    at_zero = s == 0  # units at alpha 0: the activation itself
    view = [-1 if d == 1 else 1 for d in range(len(shape))]
    mask = at_zero.view(view).expand(shape)
    y, ref = fused_out[0][mask], act(x)[mask]
    torch.testing.assert_close(y, ref, rtol=1e-6 if dtype == torch.float32 else 1e-14, atol=1e-6)
    if dtype == torch.float32:
        exact = act(x.double())[mask]
        assert float((y.double() - exact).abs().max()) <= float((ref.double() - exact).abs().max()) * 1.5 + 1e-7


@needs_kernels
@pytest.mark.parametrize("act", SMOOTH_FUSED, ids=repr)
def test_a_smooth_gates_gradients_pass_gradcheck(act, monkeypatch):
    """The fused smooth gate's backward is the derivative of its forward (float64, finite differences)."""
    monkeypatch.setenv(fused.FUSED_ENV, "1")
    gate = make_gate(act, 6).double()
    x = (torch.randn(5, 6, 3, dtype=torch.float64) * 3).requires_grad_(True)
    alpha = torch.tensor([0.0, 0.2, 0.5, 0.7, 0.9, 1.0], dtype=torch.float64, requires_grad=True)
    assert "FusedGate" in gate._gated(x, alpha).grad_fn.name()
    assert torch.autograd.gradcheck(lambda x, a: gate._gated(x, a), (x, alpha))


@needs_kernels
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("act", OUTSIDE, ids=repr)
def test_a_large_gate_outside_the_kernels_fuses_its_backward_with_the_eager_numbers_and_a_closer_d_alpha(
        act, dtype, monkeypatch):
    """Output and d input the eager numbers; d alpha equal up to rounding and within 2e-7 (float32) of the sum in
    float64 of the same products."""
    shape = (64, 16, 16, 16)
    x, s, grad = _inputs(shape, dtype)
    x = x.clamp(-8, 8)  # finite: the accuracy bound below needs finite sums
    fused_out = _run(act, x, s, grad, True, monkeypatch)
    eager_out = _run(act, x, s, grad, False, monkeypatch)
    assert fused_out[3] == eager_out[3] == "LerpGateBackward"
    for name, a, b in zip(("output", "d input"), fused_out[:2], eager_out[:2]):
        assert same_numbers(a, b), (name, (a - b).abs().nan_to_num(0.0).max().item())
    torch.testing.assert_close(fused_out[2], eager_out[2], rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-4)
    with torch.no_grad():
        exact = ((x - act(x)) * grad).double().sum((0, 2, 3))
    error = float((fused_out[2].double() - exact).abs().max() / exact.abs().max())
    assert error <= (2e-7 if dtype == torch.float32 else 1e-15), error


@needs_kernels
def test_the_kernels_share_torchs_openmp_runtime():
    """One OpenMP runtime in the process: the library links against the libgomp that torch loaded (a second runtime
    would keep a second thread pool, which torch.set_num_threads does not size)."""
    code = ("import json, torch; from nonlin_explorer import fused; assert fused.kernels() is not None; "
            "print(json.dumps(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'omp' in l.split()[-1]})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    runtimes = json.loads(out.stdout)
    assert len(runtimes) == 1, runtimes


@pytest.mark.parametrize("flags, capability", [
    ("fpu sse4_2 avx2 fma avx512f avx512bw avx512vl avx512dq", "AVX512"),
    ("fpu sse4_2 avx2 fma avx512f", "AVX2"),  # AVX512 without BW/VL/DQ: torch's AVX512 code needs them
    ("fpu sse4_2 avx2 fma", "AVX2"),
    ("fpu sse4_2 avx", None),
])
def test_the_build_takes_torchs_vector_width_from_the_cpu_and_keys_the_library_by_it(flags, capability, monkeypatch):
    monkeypatch.setattr(fused, "_cpu_flags", lambda: flags)
    expected = [] if capability is None else [f"-DCPU_CAPABILITY={capability}", f"-DCPU_CAPABILITY_{capability}"]
    assert fused._capability_flags() == expected
    fused._key.cache_clear()
    try:
        key = fused._key()
        monkeypatch.setattr(fused, "_cpu_flags", lambda: flags + " sha_ni")
        fused._key.cache_clear()
        assert fused._key() != key  # another CPU: another library
    finally:
        monkeypatch.undo()
        fused._key.cache_clear()


@needs_kernels
@pytest.mark.parametrize("shape", [(256, 1024), (8, 16, 9, 9)], ids=str)
@pytest.mark.parametrize("act", SMOOTH_FUSED, ids=repr)
def test_a_smooth_gate_is_the_identity_at_alpha_1_and_torchs_gelu_and_silu_at_alpha_0(act, shape, monkeypatch):
    """A linear unit passes its input through exactly (a collapsed model replaces it by nothing); GELU's and SiLU's
    fused forward is torch's own activation at alpha 0, bit for bit."""
    x, _, _ = _inputs(shape, torch.float32)
    x = x.clamp(-30, 30)
    for alpha in (1.0, 0.0):
        y, *_, fn = _run(act, x, torch.full((shape[1],), alpha), torch.ones(shape), True, monkeypatch)
        assert "FusedGate" in fn
        if alpha == 1.0:
            assert torch.equal(y, x)
        elif type(act) in (nn.GELU, nn.SiLU) and getattr(act, "approximate", "none") == "none":
            assert torch.equal(y, act(x))


@needs_kernels
@pytest.mark.parametrize("shape", [(256, 1024), (8, 16, 9, 9)], ids=str)
@pytest.mark.parametrize("act", [nn.GELU(), nn.Hardswish(), nn.Mish()], ids=repr)
def test_a_smooth_gate_whose_input_needs_no_gradient_gives_the_same_d_alpha(act, shape, monkeypatch):
    """A gate right after a frozen input (no d input asked for) skips the d input and sums the same d alpha."""
    monkeypatch.setenv(fused.FUSED_ENV, "1")
    x, s, grad = _inputs(shape, torch.float32)
    x = x.clamp(-30, 30)
    gate = make_gate(act, shape[1])
    d_alpha = []
    for x_grad in (True, False):
        xi, si = x.clone().requires_grad_(x_grad), s.clone().requires_grad_()
        y = gate._gated(xi, si)
        assert "FusedGate" in y.grad_fn.name()
        y.backward(grad)
        assert (xi.grad is not None) == x_grad
        d_alpha.append(si.grad)
    assert torch.equal(*d_alpha)
