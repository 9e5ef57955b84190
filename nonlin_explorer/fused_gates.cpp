// Fused CPU kernels for the piecewise-linear gates (ReLU, LeakyReLU, Hardtanh/ReLU6):
// y = lerp(act(x), x, slope), slope per unit on dim 1, forward in one pass and backward in one pass. The arithmetic
// repeats the eager paths operation for operation (the same roundings), so the output and d input are the eager
// path's numbers. d slope: on small inputs the same product reduced by torch's own sum (the eager numbers again);
// on large ones summed in the backward pass itself (torch's separate reduction of a full-size product costs as much
// as the plain activation), in blocks of float partial sums added in double: equal to the eager sum up to rounding,
// and closer to the exact sum. The eager paths repeated:
//   "lerp" numerics: autograd through act(x) then torch.lerp (small inputs);
//   "prelu" numerics: prelu forward and the hand-written backward of nonlin_explorer.gates (large ReLU inputs);
//   "function" numerics: the hand-written backward of nonlin_explorer.gate_kernels.LerpGate (other large inputs).
// Built with -ffp-contract=off so that no multiply-add is fused behind our back; torch.lerp's own fused
// multiply-add is written out as std::fma.
#include <torch/extension.h>
#include <cmath>

namespace {

enum Kind : int64_t { RELU = 0, LEAKY = 1, HARDTANH = 2 };
enum Numerics : int64_t { AUTOGRAD = 0, PRELU = 1, FUNCTION = 2 };

// act(x) and torch's backward kernel of act applied to grad (threshold_backward, leaky_relu_backward,
// hardtanh_backward), one struct per kind so that the loops compile without a branch on the kind
struct Relu {
  template <typename T> static inline T f(T x, T, T) { return x <= T(0) ? T(0) : x; }  // NaN stays NaN
  template <typename T> static inline T df(T g, T x, T, T) { return x <= T(0) ? T(0) : g; }
};
struct Leaky {
  template <typename T> static inline T f(T x, T p1, T) { return x > T(0) ? x : x * p1; }
  template <typename T> static inline T df(T g, T x, T p1, T) { return x > T(0) ? g : g * p1; }
};
struct Hardtanh {
  template <typename T> static inline T f(T x, T lo, T hi) { return x < lo ? lo : (x > hi ? hi : x); }
  template <typename T> static inline T df(T g, T x, T lo, T hi) { return (x > lo && x < hi) ? g : T(0); }
};

// torch.lerp(start, end, w) on CPU: fma(w, end - start, start) when |w| < 0.5, else fma(w - 1, end - start, end)
template <typename T> inline T lerp(T start, T end, T w) {
  T diff = end - start;
  return std::abs(w) < T(0.5) ? std::fma(w, diff, start) : std::fma(w - T(1), diff, end);
}

// One element of each pass, by numerics (see the file's head)
template <typename A, int64_t M> struct Pass {
  template <typename T> static inline T fwd(T x, T w, T p1, T p2) {
    if constexpr (M == PRELU) return x > T(0) ? x : w * x;
    else return lerp(A::f(x, p1, p2), x, w);
  }
  template <typename T> static inline T dx(T g, T x, T w, T p1, T p2) {
    if constexpr (M == PRELU) { T pos = x <= T(0) ? T(0) : g; return pos + w * (g - pos); }
    else if constexpr (M == FUNCTION) return lerp(A::df(g, x, p1, p2), g, w);
    else return g * w + A::df(g * (T(1) - w), x, p1, p2);
  }
  template <typename T> static inline T dw(T g, T x, T p1, T p2) {
    if constexpr (M == PRELU) { T pos = x <= T(0) ? T(0) : g; return (g - pos) * x; }
    else if constexpr (M == FUNCTION) return (x - A::f(x, p1, p2)) * g;
    else return g * (x - A::f(x, p1, p2));
  }
};

// Loops over (B, C, I) with the unit's slope at hand; the innermost loop runs over contiguous memory (units
// when I == 1, positions otherwise) so that the compiler vectorizes it.
template <typename P, typename T>
void forward_loop(const T* __restrict__ x, const T* __restrict__ s, T* __restrict__ y, int64_t B, int64_t C,
                  int64_t I, T p1, T p2) {
  if (I == 1) {
    for (int64_t b = 0; b < B; ++b) {
      const T* __restrict__ xr = x + b * C; T* __restrict__ yr = y + b * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = P::fwd(xr[c], s[c], p1, p2);
    }
    return;
  }
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const T w = s[bc % C];
    const T* __restrict__ xr = x + bc * I; T* __restrict__ yr = y + bc * I;
    for (int64_t i = 0; i < I; ++i) yr[i] = P::fwd(xr[i], w, p1, p2);
  }
}

template <typename P, typename T>
void backward_loop(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ s, T* __restrict__ gx,
                   T* __restrict__ d, int64_t B, int64_t C, int64_t I, T p1, T p2) {
  for (int64_t b = 0; b < B; ++b) {
    if (I == 1) {
      const int64_t o = b * C;
      if (gx) for (int64_t c = 0; c < C; ++c) gx[o + c] = P::dx(g[o + c], x[o + c], s[c], p1, p2);
      if (d) for (int64_t c = 0; c < C; ++c) d[o + c] = P::dw(g[o + c], x[o + c], p1, p2);
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      const T w = s[c]; const int64_t o = (b * C + c) * I;
      if (gx) for (int64_t i = 0; i < I; ++i) gx[o + i] = P::dx(g[o + i], x[o + i], w, p1, p2);
      if (d) for (int64_t i = 0; i < I; ++i) d[o + i] = P::dw(g[o + i], x[o + i], p1, p2);
    }
  }
}

// Large inputs: d input, and d slope summed in the same pass (see the head of the file). Rows of a 2-D input are
// summed in blocks of ROWS into float partials per unit; a unit's positions of a conv map in L float lanes (so that
// the compiler vectorizes the sum); both then added in double. The order is fixed, so the result is too.
template <typename P, typename T>
void backward_reduce_loop(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ s,
                          T* __restrict__ gx, double* __restrict__ acc, T* __restrict__ part, int64_t B, int64_t C,
                          int64_t I, T p1, T p2) {
  constexpr int L = 16; constexpr int64_t ROWS = 32;
  if (I == 1) {
    for (int64_t b0 = 0; b0 < B; b0 += ROWS) {
      const int64_t b1 = b0 + ROWS < B ? b0 + ROWS : B;
      for (int64_t c = 0; c < C; ++c) part[c] = T(0);
      for (int64_t b = b0; b < b1; ++b) {
        const T* __restrict__ gr = g + b * C; const T* __restrict__ xr = x + b * C;
        T* __restrict__ gxr = gx + b * C;
        for (int64_t c = 0; c < C; ++c) {
          gxr[c] = P::dx(gr[c], xr[c], s[c], p1, p2);
          part[c] += P::dw(gr[c], xr[c], p1, p2);
        }
      }
      for (int64_t c = 0; c < C; ++c) acc[c] += double(part[c]);
    }
    return;
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const T w = s[c]; const int64_t o = (b * C + c) * I;
      const T* __restrict__ gr = g + o; const T* __restrict__ xr = x + o; T* __restrict__ gxr = gx + o;
      T lane[L];
      for (int j = 0; j < L; ++j) lane[j] = T(0);
      int64_t i = 0;
      for (; i + L <= I; i += L)
        for (int j = 0; j < L; ++j) {
          gxr[i + j] = P::dx(gr[i + j], xr[i + j], w, p1, p2);
          lane[j] += P::dw(gr[i + j], xr[i + j], p1, p2);
        }
      double sum = 0;
      for (; i < I; ++i) { gxr[i] = P::dx(gr[i], xr[i], w, p1, p2); sum += double(P::dw(gr[i], xr[i], p1, p2)); }
      for (int j = 0; j < L; ++j) sum += double(lane[j]);
      acc[c] += sum;
    }
}

template <typename F> void dispatch(int64_t kind, int64_t mode, F&& f) {
  auto by_mode = [&](auto act) {
    using A = decltype(act);
    if (mode == PRELU) f(Pass<A, PRELU>{});
    else if (mode == FUNCTION) f(Pass<A, FUNCTION>{});
    else f(Pass<A, AUTOGRAD>{});
  };
  if (kind == RELU) by_mode(Relu{}); else if (kind == LEAKY) by_mode(Leaky{}); else by_mode(Hardtanh{});
}

void shape(const torch::Tensor& x, int64_t& B, int64_t& C, int64_t& I) {
  B = x.size(0); C = x.size(1); I = B * C == 0 ? 0 : x.numel() / (B * C);
}

void check(const torch::Tensor& x, const torch::Tensor& s) {
  TORCH_CHECK(x.device().is_cpu() && s.device().is_cpu(), "fused gates run on CPU tensors");
  TORCH_CHECK(x.dim() >= 2 && x.is_contiguous(), "fused gates need a contiguous input of 2 or more dims");
  TORCH_CHECK(s.dim() == 1 && s.is_contiguous() && s.size(0) == x.size(1), "one slope per unit on dim 1");
  TORCH_CHECK(x.scalar_type() == s.scalar_type(), "input and slope of one dtype");
}

torch::Tensor forward_kernel(const torch::Tensor& x, const torch::Tensor& s, int64_t kind, double p1, double p2,
                             int64_t mode) {
  auto y = torch::empty_like(x);
  int64_t B, C, I; shape(x, B, C, I);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_gate_forward", [&] {
    dispatch(kind, mode, [&](auto pass) {
      forward_loop<decltype(pass), scalar_t>(x.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                                             B, C, I, scalar_t(p1), scalar_t(p2));
    });
  });
  return y;
}

// d input, and the full-size d slope product that torch then reduces (as the eager paths do)
std::pair<torch::Tensor, torch::Tensor> backward_kernel(const torch::Tensor& g, const torch::Tensor& x,
                                                        const torch::Tensor& s, int64_t kind, double p1, double p2,
                                                        int64_t mode, bool want_x, bool want_s) {
  torch::Tensor gx = want_x ? torch::empty_like(x) : torch::Tensor();
  torch::Tensor d = want_s ? torch::empty_like(x) : torch::Tensor();
  int64_t B, C, I; shape(x, B, C, I);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_gate_backward", [&] {
    dispatch(kind, mode, [&](auto pass) {
      backward_loop<decltype(pass), scalar_t>(
          g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
          want_x ? gx.data_ptr<scalar_t>() : nullptr, want_s ? d.data_ptr<scalar_t>() : nullptr,
          B, C, I, scalar_t(p1), scalar_t(p2));
    });
  });
  return {gx, d};
}

// The same backward in differentiable ATen ops, for a backward that builds a graph (create_graph=True), so that
// a fused gate is differentiable twice (the eager gate on large inputs is not).
torch::Tensor act_f(const torch::Tensor& x, int64_t kind, double p1, double p2) {
  if (kind == RELU) return at::relu(x);
  if (kind == LEAKY) return at::leaky_relu(x, p1);
  return at::hardtanh(x, p1, p2);
}

torch::Tensor act_df(const torch::Tensor& g, const torch::Tensor& x, int64_t kind, double p1, double p2) {
  if (kind == RELU) return at::threshold_backward(g, x, 0);
  if (kind == LEAKY) return at::leaky_relu_backward(g, x, p1, false);
  return at::hardtanh_backward(g, x, p1, p2);
}

std::vector<int64_t> reduce_dims(const torch::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < x.dim(); ++i) if (i != 1) dims.push_back(i);
  return dims;
}

class FusedGate : public torch::autograd::Function<FusedGate> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor s,
                               int64_t kind, double p1, double p2, int64_t mode) {
    ctx->saved_data["kind"] = kind; ctx->saved_data["p1"] = p1; ctx->saved_data["p2"] = p2;
    ctx->saved_data["mode"] = mode;
    ctx->save_for_backward({x, s});
    return forward_kernel(x, s, kind, p1, p2, mode);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], s = saved[1];
    int64_t kind = ctx->saved_data["kind"].toInt();
    double p1 = ctx->saved_data["p1"].toDouble(), p2 = ctx->saved_data["p2"].toDouble();
    int64_t mode = ctx->saved_data["mode"].toInt();
    bool want_x = ctx->needs_input_grad(0), want_s = ctx->needs_input_grad(1);
    auto g = grads[0].contiguous();
    if (torch::GradMode::is_enabled()) {  // create_graph: the same formulas in differentiable ATen ops
      std::vector<int64_t> view(x.dim(), 1); view[1] = -1;
      auto w = s.view(view);
      torch::Tensor gx2, gs2;
      if (mode == PRELU) {
        auto pos = at::threshold_backward(g, x, 0), neg = g - pos;
        if (want_x) gx2 = pos + w * neg;
        if (want_s) gs2 = (neg * x).sum(reduce_dims(x));
      } else if (mode == FUNCTION) {
        if (want_x) gx2 = at::lerp(act_df(g, x, kind, p1, p2), g, w);
        if (want_s) gs2 = ((x - act_f(x, kind, p1, p2)) * g).sum(reduce_dims(x));
      } else {
        if (want_x) gx2 = g * w + act_df(g * (1 - w), x, kind, p1, p2);
        if (want_s) gs2 = (g * (x - act_f(x, kind, p1, p2))).sum(reduce_dims(x), /*keepdim=*/true).view({-1});
      }
      return {gx2, gs2, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    if (mode != AUTOGRAD && want_x && want_s) {  // large inputs: d slope summed in the pass
      auto gx = torch::empty_like(x);
      auto acc = torch::zeros({x.size(1)}, x.options().dtype(torch::kFloat64));
      auto part = torch::empty({x.size(1)}, x.options());
      int64_t B, C, I; shape(x, B, C, I);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_gate_backward_reduce", [&] {
        dispatch(kind, mode, [&](auto pass) {
          backward_reduce_loop<decltype(pass), scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
              s.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(), acc.data_ptr<double>(), part.data_ptr<scalar_t>(),
              B, C, I, scalar_t(p1), scalar_t(p2));
        });
      });
      return {gx, acc.to(x.scalar_type()), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
    }
    auto [gx, d] = backward_kernel(g, x, s, kind, p1, p2, mode, want_x, want_s);
    torch::Tensor gs;
    if (want_s) gs = mode != AUTOGRAD ? d.sum(reduce_dims(x)) : d.sum(reduce_dims(x), /*keepdim=*/true).view({-1});
    return {gx, gs, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor gate(torch::Tensor x, torch::Tensor s, int64_t kind, double p1, double p2, int64_t mode) {
  check(x, s);
  TORCH_CHECK(kind == RELU || kind == LEAKY || kind == HARDTANH, "unknown gate kind ", kind);
  TORCH_CHECK(mode == AUTOGRAD || mode == PRELU || mode == FUNCTION, "unknown numerics ", mode);
  TORCH_CHECK(mode != PRELU || kind == RELU, "prelu numerics are for ReLU gates");
  return FusedGate::apply(x, s, kind, p1, p2, mode);
}

// Any activation, large inputs (nonlin_explorer.gate_kernels.LerpGate's backward): given ga = act'(x) * g from
// torch's own derivative kernel, d input = lerp(ga, g, slope) written into ga, and d slope = sum (x - act(x)) * g
// summed in the same pass as in backward_reduce_loop: one pass where the eager form takes four.
template <typename T>
void lerp_backward_loop(T* __restrict__ ga, const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ a,
                        const T* __restrict__ s, double* __restrict__ acc, T* __restrict__ part, int64_t B, int64_t C,
                        int64_t I) {
  constexpr int L = 16; constexpr int64_t ROWS = 32;
  if (I == 1) {
    for (int64_t b0 = 0; b0 < B; b0 += ROWS) {
      const int64_t b1 = b0 + ROWS < B ? b0 + ROWS : B;
      if (acc) for (int64_t c = 0; c < C; ++c) part[c] = T(0);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t o = b * C;
        for (int64_t c = 0; c < C; ++c) ga[o + c] = lerp(ga[o + c], g[o + c], s[c]);
        if (acc) for (int64_t c = 0; c < C; ++c) part[c] += (x[o + c] - a[o + c]) * g[o + c];
      }
      if (acc) for (int64_t c = 0; c < C; ++c) acc[c] += double(part[c]);
    }
    return;
  }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const T w = s[c]; const int64_t o = (b * C + c) * I;
      T* __restrict__ gar = ga + o; const T* __restrict__ gr = g + o;
      const T* __restrict__ xr = x + o; const T* __restrict__ ar = a + o;
      for (int64_t i = 0; i < I; ++i) gar[i] = lerp(gar[i], gr[i], w);
      if (!acc) continue;
      T lane[L];
      for (int j = 0; j < L; ++j) lane[j] = T(0);
      int64_t i = 0;
      for (; i + L <= I; i += L)
        for (int j = 0; j < L; ++j) lane[j] += (xr[i + j] - ar[i + j]) * gr[i + j];
      double sum = 0;
      for (; i < I; ++i) sum += double((xr[i] - ar[i]) * gr[i]);
      for (int j = 0; j < L; ++j) sum += double(lane[j]);
      acc[c] += sum;
    }
}

std::vector<torch::Tensor> lerp_backward(torch::Tensor ga, torch::Tensor g, torch::Tensor x, torch::Tensor a,
                                         torch::Tensor s, bool want_s) {
  check(x, s);
  for (const auto* t : {&ga, &g, &a})
    TORCH_CHECK(t->is_contiguous() && t->sizes() == x.sizes() && t->scalar_type() == x.scalar_type() &&
                t->device().is_cpu(), "lerp_backward: tensors of the input's shape, dtype and layout");
  torch::Tensor acc = want_s ? torch::zeros({x.size(1)}, x.options().dtype(torch::kFloat64)) : torch::Tensor();
  auto part = torch::empty({x.size(1)}, x.options());
  int64_t B, C, I; shape(x, B, C, I);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_lerp_backward", [&] {
    lerp_backward_loop<scalar_t>(ga.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                 a.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                 want_s ? acc.data_ptr<double>() : nullptr, part.data_ptr<scalar_t>(), B, C, I);
  });
  return {ga, want_s ? acc.to(x.scalar_type()) : acc};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nonlin_explorer's fused CPU gate kernels";
  m.def("gate", &gate, "lerp(act(x), x, slope) with one fused pass forward and one backward");
  m.def("lerp_backward", &lerp_backward, "d input (into ga) and d slope of lerp(act(x), x, slope) in one pass");
}
