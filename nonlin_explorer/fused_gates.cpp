// Fused CPU gate kernels: y = lerp(act(x), x, slope), slope per unit on dim 1, forward in one pass and backward in
// one pass, on torch's threads (at::parallel_for) in whole blocks, so that the numbers do not depend on the number of
// threads.
// Piecewise-linear gates (ReLU, LeakyReLU, Hardtanh/ReLU6): the arithmetic repeats the eager paths operation for
// operation (the same roundings), so the output and d input are the eager path's numbers. d slope: on small inputs
// the same product reduced by torch's own sum (the eager numbers again); on large ones summed in the backward pass
// itself (torch's separate reduction of a full-size product costs as much as the plain activation), in blocks of
// float partial sums added in double: equal to the eager sum up to rounding, and closer to the exact sum. The eager
// paths repeated:
//   "lerp" numerics: autograd through act(x) then torch.lerp (small inputs);
//   "prelu" numerics: prelu forward and the hand-written backward of nonlin_explorer.gates (large ReLU inputs);
//   "function" numerics: the hand-written backward of nonlin_explorer.gate_kernels.LerpGate (other large inputs).
// Smooth gates (GELU, tanh GELU, SiLU, Hardswish, ELU/SELU, Mish): see their section below.
// Built with -ffp-contract=off so that no multiply-add is fused behind our back; torch.lerp's own fused
// multiply-add is written out as std::fma.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

enum Kind : int64_t { RELU = 0, LEAKY = 1, HARDTANH = 2, GELU = 3, GELU_TANH = 4, SILU = 5, HARDSWISH = 6, ELU = 7,
                      MISH = 8 };
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
// when I == 1, positions otherwise) so that the compiler vectorizes it. Each runs on torch's threads
// (at::parallel_for) in chunks of at least GRAIN elements, torch's own grain for elementwise ops.
constexpr int64_t GRAIN = 32768;

inline int64_t grain_of(int64_t per_item) { return per_item >= GRAIN ? 1 : (GRAIN + per_item - 1) / per_item; }

// body(o, n, c) for every run of n contiguous elements at offset o that belong to unit c, or (I == 1) to units
// c .. c + n - 1 (one row); the runs split over threads.
template <typename Body> void for_runs(int64_t B, int64_t C, int64_t I, const Body& body) {
  if (I == 1) {
    at::parallel_for(0, B, grain_of(C), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) body(b * C, C, int64_t(0));
    });
  } else {
    at::parallel_for(0, B * C, grain_of(I), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) body(k * I, I, k % C);
    });
  }
}

template <typename P, typename T>
void forward_loop(const T* __restrict__ x, const T* __restrict__ s, T* __restrict__ y, int64_t B, int64_t C,
                  int64_t I, T p1, T p2) {
  for_runs(B, C, I, [&](int64_t o, int64_t n, int64_t c) {
    const T* __restrict__ xr = x + o; T* __restrict__ yr = y + o;
    if (I == 1) for (int64_t j = 0; j < n; ++j) yr[j] = P::fwd(xr[j], s[j], p1, p2);
    else { const T w = s[c]; for (int64_t j = 0; j < n; ++j) yr[j] = P::fwd(xr[j], w, p1, p2); }
  });
}

template <typename P, typename T>
void backward_loop(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ s, T* __restrict__ gx,
                   T* __restrict__ d, int64_t B, int64_t C, int64_t I, T p1, T p2) {
  for_runs(B, C, I, [&](int64_t o, int64_t n, int64_t c) {
    const T* __restrict__ gr = g + o; const T* __restrict__ xr = x + o;
    if (gx) {
      T* __restrict__ out = gx + o;
      if (I == 1) for (int64_t j = 0; j < n; ++j) out[j] = P::dx(gr[j], xr[j], s[j], p1, p2);
      else { const T w = s[c]; for (int64_t j = 0; j < n; ++j) out[j] = P::dx(gr[j], xr[j], w, p1, p2); }
    }
    if (d) { T* __restrict__ out = d + o; for (int64_t j = 0; j < n; ++j) out[j] = P::dw(gr[j], xr[j], p1, p2); }
  });
}

// Large inputs: a pass that writes d input and sums each unit's d slope terms, the sum in a fixed order whatever
// the number of threads: rows of a 2-D input in blocks of ROWS into float partials per unit, a unit's positions
// of a conv map in L float lanes (so that the compiler vectorizes the sum); the partials then added in double,
// block by block (row by row for conv maps). Threads take whole blocks (rows), so the result is the same on any
// number of them. step(o, n, w_row, w, part) handles one run: w_row the row's slopes (I == 1), w the unit's
// slope (I > 1), part the run's float partials (C of them when I == 1, L otherwise) to add into.
constexpr int LANES = 16;
constexpr int64_t ROWS = 32;

template <typename T, typename Step>
void reduce_pass(int64_t B, int64_t C, int64_t I, const T* __restrict__ s, double* __restrict__ acc,
                 const Step& step) {
  if (I == 1) {
    const int64_t blocks = (B + ROWS - 1) / ROWS;
    std::vector<T> part(acc ? blocks * C : 0);  // zeros
    at::parallel_for(0, blocks, grain_of(ROWS * C), [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        T* __restrict__ pk = acc ? part.data() + k * C : nullptr;
        for (int64_t b = k * ROWS, b1 = std::min(B, b + ROWS); b < b1; ++b) step(b * C, C, s, T(0), pk);
      }
    });
    if (acc) for (int64_t k = 0; k < blocks; ++k) for (int64_t c = 0; c < C; ++c) acc[c] += double(part[k * C + c]);
    return;
  }
  std::vector<double> sums(acc ? B * C : 0);
  at::parallel_for(0, B * C, grain_of(I), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      T lane[LANES];
      for (int j = 0; j < LANES; ++j) lane[j] = T(0);
      const int64_t o = k * I, full = I - I % LANES;
      step(o, full, nullptr, s[k % C], acc ? lane : nullptr);
      double sum = 0;
      if (acc) {  // the tail one element at a time, each added in double
        for (int64_t i = full; i < I; ++i) { T one = T(0); step(o + i, 1, nullptr, s[k % C], &one); sum += double(one); }
        for (int j = 0; j < LANES; ++j) sum += double(lane[j]);
        sums[k] = sum;
      } else if (full < I) {
        step(o + full, I - full, nullptr, s[k % C], nullptr);
      }
    }
  });
  if (acc) for (int64_t b = 0; b < B; ++b) for (int64_t c = 0; c < C; ++c) acc[c] += sums[b * C + c];
}

// One run of the fused gate's backward: d input written, d slope terms added to the run's partials.
template <typename P, typename T>
void backward_reduce_loop(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ s,
                          T* __restrict__ gx, double* __restrict__ acc, int64_t B, int64_t C, int64_t I, T p1, T p2) {
  reduce_pass<T>(B, C, I, s, acc, [&](int64_t o, int64_t n, const T* __restrict__ wr, T w, T* __restrict__ part) {
    const T* __restrict__ gr = g + o; const T* __restrict__ xr = x + o; T* __restrict__ out = gx + o;
    if (wr) {  // a row: one unit per element
      for (int64_t j = 0; j < n; ++j) {
        out[j] = P::dx(gr[j], xr[j], wr[j], p1, p2);
        part[j] += P::dw(gr[j], xr[j], p1, p2);
      }
    } else if (n == 1) {
      out[0] = P::dx(gr[0], xr[0], w, p1, p2);
      part[0] += P::dw(gr[0], xr[0], p1, p2);
    } else {
      for (int64_t i = 0; i < n; i += LANES)
        for (int j = 0; j < LANES; ++j) {
          out[i + j] = P::dx(gr[i + j], xr[i + j], w, p1, p2);
          part[j] += P::dw(gr[i + j], xr[i + j], p1, p2);
        }
    }
  });
}

// ---- Smooth activations (GELU, tanh GELU, SiLU, Hardswish, ELU/SELU, Mish) --------------------------------------
// Their values need exp, erf or tanh, so torch's own kernels cannot be repeated in the same pass; these compute them
// with torch's vector type (at::vec::Vectorized: the same vector math torch's CPU kernels use, its SIMD width chosen
// by the build's CPU_CAPABILITY), the activation and its derivative together: the forward is one pass where the
// eager gate takes two (GELU and SiLU: torch's own forward and a lerp pass, see below), the backward one where it
// takes two and torch's reduction. The numbers equal the eager gate's up to rounding (a few float ulps: the formulas
// are torch's, their operation order not always; GELU's and SiLU's output at slope 0 exactly).
template <typename T> using Vec = at::vec::Vectorized<T>;

// act(x) and act'(x) on a vector; p1, p2: ELU's alpha and scale
// GELU's and SiLU's forward run torch's own kernels and a lerp pass (forward_kernel): torch's run on oneDNN and beat
// these formulas on vectors (a GELU forward 128 us against 170-205 us for the vector erf, one thread, (256, 1024)).
struct Gelu {
  template <typename T> static void fd(Vec<T> x, T, T, Vec<T>& a, Vec<T>* d) {
    const Vec<T> half(T(0.5)), one(T(1)), e = (x * x * Vec<T>(T(-0.5))).exp();  // exp(-x^2 / 2)
    Vec<T> cdf;
    if constexpr (std::is_same_v<T, float>) {
      // erf(x / sqrt 2) by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, the formula of torch's vector erf) from
      // the same exp(-x^2 / 2) that the density needs: one exp where erf and the density take two
      const Vec<T> t = one / at::vec::fmadd(Vec<T>(T(0.3275911 * M_SQRT1_2)), x.abs(), one);
      Vec<T> r = at::vec::fmadd(Vec<T>(T(1.061405429)), t, Vec<T>(T(-1.453152027)));
      r = at::vec::fmadd(r, t, Vec<T>(T(1.421413741)));
      r = at::vec::fmadd(r, t, Vec<T>(T(-0.284496736)));
      r = at::vec::fmadd(r, t, Vec<T>(T(0.254829592)));
      const Vec<T> erf_abs = one - r * t * e;
      cdf = half * (one + Vec<T>::blendv(erf_abs, erf_abs.neg(), x < Vec<T>(T(0))));
    } else {
      cdf = half * (one + (x * Vec<T>(T(M_SQRT1_2))).erf());  // float64: Sleef's erf, to double precision
    }
    a = x * cdf;
    if (d) *d = cdf + x * e * Vec<T>(T(M_2_SQRTPI * M_SQRT1_2 * 0.5));
  }
};
struct GeluTanh {
  template <typename T> static void fd(Vec<T> x, T, T, Vec<T>& a, Vec<T>* d) {
    const T beta = T(M_SQRT2 * M_2_SQRTPI * 0.5), kappa = T(0.044715);
    const Vec<T> x2 = x * x, t = (Vec<T>(beta) * (x + Vec<T>(kappa) * x2 * x)).tanh();
    const Vec<T> half_x = Vec<T>(T(0.5)) * x, half_1pt = Vec<T>(T(0.5)) * (Vec<T>(T(1)) + t);
    a = x * half_1pt;
    if (d) *d = half_1pt + half_x * (Vec<T>(T(1)) - t * t) * Vec<T>(beta) * (Vec<T>(T(1)) + Vec<T>(T(3) * kappa) * x2);
  }
};
struct Silu {
  template <typename T> static void fd(Vec<T> x, T, T, Vec<T>& a, Vec<T>* d) {
    const Vec<T> one(T(1)), den = one + x.neg().exp_u20();
    if (!d) { a = x / den; return; }  // (not used: the forward is torch's silu)
    const Vec<T> sig = one / den;  // the backward: one division for both
    a = x * sig;
    *d = sig * (one + x * (one - sig));
  }
};
struct Hardswish {
  template <typename T> static void fd(Vec<T> x, T, T, Vec<T>& a, Vec<T>* d) {
    const Vec<T> three(T(3)), six(T(6)), clamped = at::vec::minimum(at::vec::maximum(x + three, Vec<T>(T(0))), six);
    if (!d) { a = x * clamped / six; return; }  // the output: torch's formula and roundings
    // the backward: multiplications where the forward divides (a division costs several multiplications here)
    a = x * clamped * Vec<T>(T(1) / T(6));
    const Vec<T> mid = at::vec::fmadd(x, Vec<T>(T(1) / T(3)), Vec<T>(T(0.5)));
    // torch's hardswish_backward: 0 up to -3, x / 3 + 1/2 between, 1 from 3 on (NaN: 1)
    *d = Vec<T>::blendv(Vec<T>::blendv(Vec<T>(T(1)), mid, x < three), Vec<T>(T(0)), x <= three.neg());
  }
};
struct Elu {  // scale * x above 0, scale * alpha * (exp(x) - 1) at or below
  template <typename T> static void fd(Vec<T> x, T alpha, T scale, Vec<T>& a, Vec<T>* d) {
    const Vec<T> neg = x <= Vec<T>(T(0)), sa(scale * alpha);
    if (!d) { a = Vec<T>::blendv(x * Vec<T>(scale), x.expm1() * sa, neg); return; }  // the output: expm1, as torch
    const Vec<T> e = x.exp();  // the backward: one exp for both (act(x) only enters d slope, where e - 1 will do)
    a = Vec<T>::blendv(x * Vec<T>(scale), (e - Vec<T>(T(1))) * sa, neg);
    *d = Vec<T>::blendv(Vec<T>(scale), e * sa, neg);
  }
};
struct Mish {
  template <typename T> static void fd(Vec<T> x, T, T, Vec<T>& a, Vec<T>* d) {
    const Vec<T> one(T(1)), ex = x.exp(), t = ex.log1p().tanh();
    a = x * t;
    if (d) *d = t + x * (one / (one + one / ex)) * (one - t * t);  // sigmoid from the same exp (inf: 1, 0: 0)
  }
};

// lerp(start, end, w) = w end + (1 - w) start as two multiply-subtracts: exactly start at w = 0 and end at w = 1 (the
// activation; a linear unit), within two roundings between. torch.lerp's blend of two forms (the scalar lerp above,
// which the piecewise-linear gates repeat for torch's numbers) takes six vector operations.
template <typename T> inline Vec<T> vlerp(Vec<T> start, Vec<T> end, Vec<T> w) {
  return at::vec::fmsub(w, end, at::vec::fmsub(w, start, start));
}

// f(j, k) over the vectors of a run of n elements: whole vectors first (k == V, a constant once f is inlined, so that
// their loads and stores take no count: a counted load or store costs a branch and a mask, about a fifth more on a
// cheap activation's pass), then one partial vector (k < V) if any
template <int64_t V, typename F> inline void vector_runs(int64_t n, const F& f) {
  int64_t j = 0;
  for (; j + V <= n; j += V) f(j, V);
  if (j < n) f(j, n - j);
}

template <typename A, typename T>
void smooth_forward_loop(const T* __restrict__ x, const T* __restrict__ s, T* __restrict__ y, int64_t B, int64_t C,
                         int64_t I, T p1, T p2) {
  constexpr int64_t V = Vec<T>::size();
  for_runs(B, C, I, [&](int64_t o, int64_t n, int64_t c) {
    const Vec<T> wc(s[c]);
    vector_runs<V>(n, [&](int64_t j, int64_t k) {
      const Vec<T> xv = Vec<T>::loadu(x + o + j, k), w = I == 1 ? Vec<T>::loadu(s + j, k) : wc;
      Vec<T> a;
      A::fd(xv, p1, p2, a, static_cast<Vec<T>*>(nullptr));
      vlerp(a, xv, w).store(y + o + j, k);
    });
  });
}

// a = lerp(a, x, slope) in place
template <typename T>
void lerp_inplace_loop(T* __restrict__ a, const T* __restrict__ x, const T* __restrict__ s, int64_t B, int64_t C,
                       int64_t I) {
  constexpr int64_t V = Vec<T>::size();
  for_runs(B, C, I, [&](int64_t o, int64_t n, int64_t c) {
    const Vec<T> wc(s[c]);
    vector_runs<V>(n, [&](int64_t j, int64_t k) {
      vlerp(Vec<T>::loadu(a + o + j, k), Vec<T>::loadu(x + o + j, k), I == 1 ? Vec<T>::loadu(s + j, k) : wc)
          .store(a + o + j, k);
    });
  });
}

// d input (when gx) and the d slope terms (x - act(x)) * g summed per unit (when acc), in reduce_pass's order
template <typename A, typename T>
void smooth_backward_loop(const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ s,
                          T* __restrict__ gx, double* __restrict__ acc, int64_t B, int64_t C, int64_t I, T p1, T p2) {
  constexpr int64_t V = Vec<T>::size();
  static_assert(LANES % V == 0, "the lanes of a conv map's sum are whole vectors");
  reduce_pass<T>(B, C, I, s, acc, [&](int64_t o, int64_t n, const T* __restrict__ wr, T w, T* __restrict__ part) {
    const Vec<T> wc(w);
    vector_runs<V>(n, [&](int64_t j, int64_t k) {
      const Vec<T> xv = Vec<T>::loadu(x + o + j, k), gv = Vec<T>::loadu(g + o + j, k);
      Vec<T> a, d;
      A::fd(xv, p1, p2, a, &d);
      if (gx) vlerp(d * gv, gv, wr ? Vec<T>::loadu(wr + j, k) : wc).store(gx + o + j, k);
      if (part) {  // a row's units are the elements (j on); a conv map's lanes repeat every LANES elements
        T* pj = part + (wr ? j : j % LANES);
        (Vec<T>::loadu(pj, k) + (xv - a) * gv).store(pj, k);
      }
    });
  });
}

template <typename F> void dispatch_smooth(int64_t kind, F&& f) {
  switch (kind) {
    case GELU: f(Gelu{}); break;
    case GELU_TANH: f(GeluTanh{}); break;
    case SILU: f(Silu{}); break;
    case HARDSWISH: f(Hardswish{}); break;
    case ELU: f(Elu{}); break;
    default: f(Mish{}); break;
  }
}

bool is_smooth(int64_t kind) { return kind >= GELU && kind <= MISH; }

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
  int64_t B, C, I; shape(x, B, C, I);
  if (kind == GELU || kind == SILU) {  // torch's own (oneDNN's, faster than their vector math here: see Gelu), exactly,
    auto a = kind == GELU ? at::gelu(x) : at::silu(x);  // then the lerp in place over it
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_gelu_lerp", [&] {
      lerp_inplace_loop<scalar_t>(a.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), B, C, I);
    });
    return a;
  }
  auto y = torch::empty_like(x);
  if (is_smooth(kind)) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_smooth_forward", [&] {
      dispatch_smooth(kind, [&](auto act) {
        smooth_forward_loop<decltype(act), scalar_t>(x.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                                     y.data_ptr<scalar_t>(), B, C, I, scalar_t(p1), scalar_t(p2));
      });
    });
    return y;
  }
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
  switch (kind) {
    case RELU: return at::relu(x);
    case LEAKY: return at::leaky_relu(x, p1);
    case GELU: return at::gelu(x);
    case GELU_TANH: return at::gelu(x, "tanh");
    case SILU: return at::silu(x);
    case HARDSWISH: return at::hardswish(x);
    case ELU: return at::elu(x, p1, p2, 1.0);
    case MISH: return at::mish(x);
  }
  return at::hardtanh(x, p1, p2);
}

torch::Tensor act_df(const torch::Tensor& g, const torch::Tensor& x, int64_t kind, double p1, double p2) {
  switch (kind) {
    case RELU: return at::threshold_backward(g, x, 0);
    case LEAKY: return at::leaky_relu_backward(g, x, p1, false);
    case GELU: return at::gelu_backward(g, x);
    case GELU_TANH: return at::gelu_backward(g, x, "tanh");
    case SILU: {  // silu_backward and mish_backward have no derivative: their formulas, as torch's autograd uses
      auto sig = at::sigmoid(x);
      return g * sig * (1 + x * (1 - sig));
    }
    case HARDSWISH: return at::hardswish_backward(g, x);
    case ELU: return at::elu_backward(g, p1, p2, 1.0, false, x);
    case MISH: {
      auto t = at::tanh(at::softplus(x));
      return g * (t + x * at::sigmoid(x) * (1 - t * t));
    }
  }
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
    if (is_smooth(kind)) {  // one pass: d input and d slope together (each only when asked for)
      auto gx = want_x ? torch::empty_like(x) : torch::Tensor();
      auto acc = want_s ? torch::zeros({x.size(1)}, x.options().dtype(torch::kFloat64)) : torch::Tensor();
      int64_t B, C, I; shape(x, B, C, I);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_smooth_backward", [&] {
        dispatch_smooth(kind, [&](auto act) {
          smooth_backward_loop<decltype(act), scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
              s.data_ptr<scalar_t>(), want_x ? gx.data_ptr<scalar_t>() : nullptr,
              want_s ? acc.data_ptr<double>() : nullptr, B, C, I, scalar_t(p1), scalar_t(p2));
        });
      });
      return {gx, want_s ? acc.to(x.scalar_type()) : torch::Tensor(), torch::Tensor(), torch::Tensor(),
              torch::Tensor(), torch::Tensor()};
    }
    if (mode != AUTOGRAD && want_x && want_s) {  // large inputs: d slope summed in the pass
      auto gx = torch::empty_like(x);
      auto acc = torch::zeros({x.size(1)}, x.options().dtype(torch::kFloat64));
      int64_t B, C, I; shape(x, B, C, I);
      AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_gate_backward_reduce", [&] {
        dispatch(kind, mode, [&](auto pass) {
          backward_reduce_loop<decltype(pass), scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
              s.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(), acc.data_ptr<double>(), B, C, I, scalar_t(p1),
              scalar_t(p2));
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
  TORCH_CHECK(kind == RELU || kind == LEAKY || kind == HARDTANH || is_smooth(kind), "unknown gate kind ", kind);
  TORCH_CHECK(mode == AUTOGRAD || mode == PRELU || mode == FUNCTION, "unknown numerics ", mode);
  TORCH_CHECK(mode != PRELU || kind == RELU, "prelu numerics are for ReLU gates");
  return FusedGate::apply(x, s, kind, p1, p2, mode);
}

// Any activation, large inputs (nonlin_explorer.gate_kernels.LerpGate's backward): given ga = act'(x) * g from
// torch's own derivative kernel, d input = lerp(ga, g, slope) written into ga, and d slope = sum (x - act(x)) * g
// summed in the same pass as in backward_reduce_loop: one pass where the eager form takes four.
template <typename T>
void lerp_backward_loop(T* __restrict__ ga, const T* __restrict__ g, const T* __restrict__ x, const T* __restrict__ a,
                        const T* __restrict__ s, double* __restrict__ acc, int64_t B, int64_t C, int64_t I) {
  reduce_pass<T>(B, C, I, s, acc, [&](int64_t o, int64_t n, const T* __restrict__ wr, T w, T* __restrict__ part) {
    T* __restrict__ gar = ga + o; const T* __restrict__ gr = g + o;
    const T* __restrict__ xr = x + o; const T* __restrict__ ar = a + o;
    if (wr) for (int64_t j = 0; j < n; ++j) gar[j] = lerp(gar[j], gr[j], wr[j]);
    else for (int64_t j = 0; j < n; ++j) gar[j] = lerp(gar[j], gr[j], w);
    if (!part) return;
    if (wr || n == 1) for (int64_t j = 0; j < n; ++j) part[j] += (xr[j] - ar[j]) * gr[j];
    else
      for (int64_t i = 0; i < n; i += LANES)
        for (int j = 0; j < LANES; ++j) part[j] += (xr[i + j] - ar[i + j]) * gr[i + j];
  });
}

std::vector<torch::Tensor> lerp_backward(torch::Tensor ga, torch::Tensor g, torch::Tensor x, torch::Tensor a,
                                         torch::Tensor s, bool want_s) {
  check(x, s);
  for (const auto* t : {&ga, &g, &a})
    TORCH_CHECK(t->is_contiguous() && t->sizes() == x.sizes() && t->scalar_type() == x.scalar_type() &&
                t->device().is_cpu(), "lerp_backward: tensors of the input's shape, dtype and layout");
  torch::Tensor acc = want_s ? torch::zeros({x.size(1)}, x.options().dtype(torch::kFloat64)) : torch::Tensor();
  int64_t B, C, I; shape(x, B, C, I);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_lerp_backward", [&] {
    lerp_backward_loop<scalar_t>(ga.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                 a.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                 want_s ? acc.data_ptr<double>() : nullptr, B, C, I);
  });
  return {ga, want_s ? acc.to(x.scalar_type()) : acc};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "nonlin_explorer's fused CPU gate kernels";
  m.def("gate", &gate, "lerp(act(x), x, slope) with one fused pass forward and one backward");
  m.def("lerp_backward", &lerp_backward, "d input (into ga) and d slope of lerp(act(x), x, slope) in one pass");
}
