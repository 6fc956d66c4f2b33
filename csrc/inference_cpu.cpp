// Fused CPU kernels of the detector's inference path (mint_rl/inference.py), registered with the
// dispatcher as torch.ops.mint_rl_inference.<name> when mint_rl._C is loaded:
//
//   softargmax_head       the last layer: rim add + LeakyReLU + sign + soft-argmax + status,
//                         straight from the phase-stacked convolution output (SoftArgmaxHead)
//   rim_lrelu_interleave  a hidden transposed layer: rim add + LeakyReLU + depth_to_space + crop
//   area_downsample       uint8 frames shrunk by integer factors (box mean), the numbers of
//                         OpenCV's INTER_AREA: what the wrappers do before the detector
//
// Each replaces several torch passes over a channels-last float32 tensor (index_add_,
// leaky_relu_, copies, amax, exp_, matmul) by one read of it. The arithmetic is the one of the
// pure-torch fallback in mint_rl/inference.py, step for step; tests/test_inference.py checks
// that both give the same numbers.
//
// Layout: a channels-last (N, C, I, J) tensor is (N, I, J, C) in memory, so the C channels of
// one grid position are contiguous. Every inner loop runs over those channels and is written
// for the compiler to vectorise; on x86-64 Linux with GCC each such loop is compiled for
// AVX-512, AVX2 and plain x86-64 and the best one is picked at load time (target_clones).
// Work is split with at::parallel_for, so torch.set_num_threads applies.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MINT_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MINT_SIMD_CLONES
#endif

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// --------------------------------------------------------------------------------------------
// Argument checks: what was expected, what came
// --------------------------------------------------------------------------------------------

void check_float_cpu(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": expected ", name, " on the CPU, got ", t.device());
  TORCH_CHECK_VALUE(t.scalar_type() == at::kFloat, op, ": expected ", name, " of dtype float32, got ",
                    t.scalar_type());
}

void check_table(const at::Tensor& t, int64_t rows, int64_t cols, const char* op, const char* name) {
  check_float_cpu(t, op, name);
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == rows && t.size(1) == cols && t.is_contiguous(), op,
                    ": expected ", name, " to be a contiguous (", rows, ", ", cols, ") table, got ", t.sizes(),
                    t.is_contiguous() ? "" : " (not contiguous)");
}

// A channels-last (N, C, I, J) float32 CPU tensor.
void check_grid(const at::Tensor& v, const char* op) {
  TORCH_CHECK_VALUE(v.dim() == 4, op, ": expected a 4-d (N, C, I, J) tensor, got ", v.dim(), " dims ", v.sizes());
  check_float_cpu(v, op, "the convolution output");
  TORCH_CHECK_VALUE(v.is_contiguous(at::MemoryFormat::ChannelsLast), op,
                    ": expected a channels-last tensor (the inference path's layout), got strides ", v.strides(),
                    " for shape ", v.sizes());
}

// The rim of a bias map (mint_rl.inference.BiasMap): flat grid positions i * J + j, strictly
// increasing, and the (1, R, C) values added there.
void check_rim(const at::Tensor& index, const at::Tensor& delta, int64_t positions, int64_t channels,
               const char* op) {
  TORCH_CHECK_VALUE(index.device().is_cpu() && index.scalar_type() == at::kLong && index.dim() == 1 &&
                        index.is_contiguous(),
                    op, ": expected the rim index as a contiguous 1-d int64 CPU tensor, got ", index.scalar_type(),
                    " of shape ", index.sizes(), " on ", index.device());
  const int64_t rim = index.numel();
  check_float_cpu(delta, op, "the rim delta");
  TORCH_CHECK_VALUE(delta.dim() == 3 && delta.size(0) == 1 && delta.size(1) == rim && delta.size(2) == channels &&
                        delta.is_contiguous(),
                    op, ": expected a contiguous rim delta of shape (1, ", rim, ", ", channels, "), got ",
                    delta.sizes());
  const int64_t* idx = index.data_ptr<int64_t>();
  for (int64_t r = 0; r < rim; ++r) {
    TORCH_CHECK_VALUE(idx[r] >= 0 && idx[r] < positions && (r == 0 || idx[r] > idx[r - 1]), op,
                      ": expected rim positions strictly increasing in [0, ", positions, "), got ", idx[r],
                      " at entry ", r, r > 0 ? " after " : "", r > 0 ? std::to_string(idx[r - 1]) : std::string());
  }
}

// For the grid positions [first, first + count): the rim values added there, or nullptr.
// `index` is sorted (check_rim), so one binary search finds the first rim position in range.
void rim_rows(const int64_t* index, int64_t rim, const float* delta, int64_t channels, int64_t first, int64_t count,
              const float** out) {
  std::fill(out, out + count, nullptr);
  for (const int64_t* r = std::lower_bound(index, index + rim, first); r != index + rim && *r < first + count; ++r)
    out[*r - first] = delta + (r - index) * channels;
}

// --------------------------------------------------------------------------------------------
// Vectorisable element functions
// --------------------------------------------------------------------------------------------

// exp(x) for x <= 0, -inf included (-> 0), in float without a libm call, so that loops over it
// vectorise. x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2; e^r by Cephes' degree-7
// polynomial (relative error < 2e-7), 2^n written into the exponent bits. Below -87 (where
// e^x < 1.7e-38, the smallest normal floats) the result is 0.
inline float exp_nonpositive(float x) {
  constexpr float kLow = -87.0f;
  const float xc = x < kLow ? kLow : x;
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;              // ln2 in two parts (Cody-Waite)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 0]
  float two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  const float value = er * two_n;
  return x < kLow ? 0.0f : value;
}

// LeakyReLU: z for z > 0, slope * z otherwise (torch's leaky_relu). Here and in
// exp_nonpositive both values are computed before the select, which vectorises without masks.
inline float leaky_relu(float z, float slope) {
  const float scaled = z * slope;
  return z > 0.0f ? z : scaled;
}

// --------------------------------------------------------------------------------------------
// softargmax_head
// --------------------------------------------------------------------------------------------
//
// Input: the last layer's convolution output v, channels-last (N, C, I, J) with C = G * K
// channels c = g * K + k (phase g of keypoint k), the bias map's interior already added by the
// convolution; its rim (index, delta); the LeakyReLU slope; the last BatchNorm's sign s_k and
// shift b_k (its |scale| is in the weights). Per entry e = (i, j, c):
//
//     y_e = s_k * lrelu(v_e + rim_e)                     (y - b, the map value before softplus)
//     Y_k = max_e y_e over the entries of keypoint k     (entries outside the map are -inf)
//     w_e = exp(y_e - Y_k)
//     S_k = sum_e w_e * [in_e, in_e x_e, in_e y_e]       (in, x, y: the map coordinate tables)
//
// with in_e x_e = row_in[i, c] * col_x[j, c], in_e y_e = row_y[i, c] * col_in[j, c] and
// in_e = row_in[i, c] * col_in[j, c]. The softplus maps f = softplus(y + b) have soft-argmax
// weights exp(f) = 1 + exp(y + b), i.e. exp(Y + b) (w + u) with u = exp(-(Y + b)), so
//
//     keypoint_k = (S_k[1:] + u T[1:]) / (S_k[0] + u T[0])     (T: the tables summed, `totals`)
//     status_k   = sigmoid(sharpness * (softplus(Y_k + b_k) - gamma))
//
// u is computed with Y + b clamped at -80 (beyond, the weights are uniform to 1e-35), as the
// torch fallback does.
//
// One pass over v, a grid row at a time, with the max kept online: a row's values go into a
// buffer (L1-sized) with their per-channel row max; where the running max M_c grows, the sums
// so far are multiplied by exp(M_old - M_new); then the row's weights are summed. The state
// (M, S) of a block of rows merges with another block's the same way, so the rows of every
// image are split into blocks of kRowsPerBlock rows, the tasks of at::parallel_for. The split
// does not depend on the batch size or the number of threads, nor then do the results.

struct HeadState {
  std::vector<float> max;     // (C,) running max of y per channel c = g * K + k
  std::vector<double> sums;   // (3, C) sum of w [in, in x, in y], w relative to `max`
  explicit HeadState(int64_t channels) : max(channels, -kInf), sums(3 * channels, 0.0) {}
};

// The vectorised loops below run over the channels of one grid position in blocks of kLanes
// (one AVX-512 register of floats), so the per-row buffers and tables have a channel stride
// `Cp`, C rounded up to a multiple of kLanes, and no loop has a scalar remainder. Padding
// channels hold y = -inf (weight 0) and table entries 0.
constexpr int64_t kLanes = 16;

// Grid rows per task of softargmax_head (16 rows of a 96x96 detector's last layer: 1/4 image).
constexpr int64_t kRowsPerBlock = 16;

int64_t padded(int64_t channels) { return (channels + kLanes - 1) / kLanes * kLanes; }

// y = sign * lrelu(v + rim) for one grid row (J positions x C channels of v) into the padded
// buffer `y` (J x Cp, padding -inf), and its per-channel max into `row_max` (Cp). `rim[j]` is
// the row's rim values at position j or nullptr (added to v first, in the buffer). v is read
// in memory order.
MINT_SIMD_CLONES
void activate_row(const float* v, const float* const* rim, const float* sign, float slope, int64_t J, int64_t C,
                  int64_t Cp, float* y, float* row_max) {
  for (int64_t c = 0; c < Cp; ++c) row_max[c] = -kInf;
  const int64_t full = C / kLanes * kLanes;  // channels in full blocks; the rest is the partial block
  for (int64_t j = 0; j < J; ++j) {
    const float* src = v + j * C;
    float* yj = y + j * Cp;
    if (rim[j] != nullptr) {  // rare: the few positions near the border
      for (int64_t c = 0; c < C; ++c) yj[c] = src[c] + rim[j][c];
      src = yj;
    }
    for (int64_t block = 0; block < full; block += kLanes) {
#pragma omp simd
      for (int64_t c = block; c < block + kLanes; ++c) {
        const float a = sign[c] * leaky_relu(src[c], slope);
        yj[c] = a;
        row_max[c] = row_max[c] < a ? a : row_max[c];
      }
    }
    if (full < Cp) {  // the partial block: padding channels are -inf
#pragma omp simd
      for (int64_t c = full; c < full + kLanes; ++c) {
        const float a = c < C ? sign[c] * leaky_relu(src[c], slope) : -kInf;
        yj[c] = a;
        row_max[c] = row_max[c] < a ? a : row_max[c];
      }
    }
  }
}

// Raise the running max to include a row's: max_c = max(max_c, row_max_c); `rescale` gets
// exp(old - new) for the sums so far (0 when there were none) and `base` the value the row's
// weights are taken relative to (+inf for a channel whose max is still -inf: all its weights 0).
MINT_SIMD_CLONES
void raise_max(const float* row_max, int64_t Cp, float* max, float* rescale, float* base) {
  for (int64_t block = 0; block < Cp; block += kLanes) {
#pragma omp simd
    for (int64_t c = block; c < block + kLanes; ++c) {
      const float old = max[c];
      const float now = old < row_max[c] ? row_max[c] : old;
      const bool empty = now == -kInf;
      const float decay = exp_nonpositive(old - now);  // NaN when both are -inf: not used then
      rescale[c] = empty ? 1.0f : decay;
      base[c] = empty ? kInf : now;
      max[c] = now;
    }
  }
}

// Sum over one row's J positions (padded buffer and tables, J x Cp): w = exp(y - base),
// s_in += w col_in, s_x += w col_x. Channel blocks outside, positions inside (sums in registers).
MINT_SIMD_CLONES
void sum_row_weights(const float* y, const float* base, const float* col_in, const float* col_x, int64_t J,
                     int64_t Cp, float* s_in, float* s_x) {
  for (int64_t block = 0; block < Cp; block += kLanes) {
    const float* b = base + block;
    float sum_in[kLanes], sum_x[kLanes];
    for (int64_t l = 0; l < kLanes; ++l) sum_in[l] = sum_x[l] = 0.0f;
    for (int64_t j = 0; j < J; ++j) {
      const int64_t at = j * Cp + block;
#pragma omp simd
      for (int64_t l = 0; l < kLanes; ++l) {
        const float w = exp_nonpositive(y[at + l] - b[l]);
        sum_in[l] += w * col_in[at + l];
        sum_x[l] += w * col_x[at + l];
      }
    }
    for (int64_t l = 0; l < kLanes; ++l) {
      s_in[block + l] = sum_in[l];
      s_x[block + l] = sum_x[l];
    }
  }
}

struct HeadArgs {
  const float* v;          // (N, I, J, C)
  const int64_t* rim_index;
  const float* rim_delta;  // (R, C)
  int64_t rim;
  float slope;
  const float* sign;       // (Cp,): s_k of every channel c = g * K + k, 1 for the padding
  const float* row_in;     // (I, C)
  const float* row_y;      // (I, C)
  const float* col_in;     // (J, Cp), padding 0
  const float* col_x;      // (J, Cp), padding 0
  int64_t I, J, C, Cp;
};

// Rows [row_begin, row_end) of image n into `state`.
void head_rows(const HeadArgs& a, int64_t n, int64_t row_begin, int64_t row_end, HeadState& state) {
  const int64_t J = a.J, C = a.C, Cp = a.Cp;
  std::vector<float> y(J * Cp), row_max(Cp), max(Cp, -kInf), rescale(Cp), base(Cp), s_in(Cp), s_x(Cp);
  std::vector<const float*> rim(J);
  double* sum_in = state.sums.data();
  double* sum_x = sum_in + C;
  double* sum_y = sum_x + C;
  for (int64_t i = row_begin; i < row_end; ++i) {
    rim_rows(a.rim_index, a.rim, a.rim_delta, C, i * J, J, rim.data());
    activate_row(a.v + (n * a.I + i) * J * C, rim.data(), a.sign, a.slope, J, C, Cp, y.data(), row_max.data());
    raise_max(row_max.data(), Cp, max.data(), rescale.data(), base.data());
    sum_row_weights(y.data(), base.data(), a.col_in, a.col_x, J, Cp, s_in.data(), s_x.data());
    const float* r_in = a.row_in + i * C;
    const float* r_y = a.row_y + i * C;
    for (int64_t c = 0; c < C; ++c) {
      const double s = rescale[c];
      sum_in[c] = sum_in[c] * s + static_cast<double>(r_in[c]) * s_in[c];
      sum_x[c] = sum_x[c] * s + static_cast<double>(r_in[c]) * s_x[c];
      sum_y[c] = sum_y[c] * s + static_cast<double>(r_y[c]) * s_in[c];
    }
  }
  std::copy(max.begin(), max.begin() + C, state.max.begin());
}

// A (J, C) table with its rows padded to Cp channels (zeros).
std::vector<float> pad_table(const at::Tensor& table, int64_t Cp) {
  const int64_t rows = table.size(0), C = table.size(1);
  std::vector<float> out(rows * Cp, 0.0f);
  const float* src = table.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * C, src + (r + 1) * C, out.begin() + r * Cp);
  return out;
}

// Keypoints (K, 2) and status (K,) of one image from the states of its row blocks: per keypoint
// k the max over blocks and phases, the sums brought to it, then the formulas above (double).
void head_finish(const std::vector<HeadState>& blocks, int64_t K, int64_t C, const float* shift,
                 const double totals[3], double gamma, double sharpness, float* keypoints, float* status) {
  for (int64_t k = 0; k < K; ++k) {
    double peak = -INFINITY;
    for (const HeadState& b : blocks)
      for (int64_t c = k; c < C; c += K) peak = std::max(peak, static_cast<double>(b.max[c]));
    double sums[3] = {0.0, 0.0, 0.0};
    if (peak != -INFINITY) {
      for (const HeadState& b : blocks)
        for (int64_t c = k; c < C; c += K) {
          if (b.max[c] == -kInf) continue;  // no weights in this block and phase
          const double scale = std::exp(static_cast<double>(b.max[c]) - peak);
          for (int t = 0; t < 3; ++t) sums[t] += scale * b.sums[t * C + c];
        }
    }
    const double peak_y = peak + shift[k];                                  // max of y + b
    const double uniform = std::exp(-std::max(peak_y, -80.0));              // the "1" of 1 + exp(y + b)
    for (int t = 0; t < 3; ++t) sums[t] += uniform * totals[t];
    keypoints[2 * k] = static_cast<float>(sums[1] / sums[0]);
    keypoints[2 * k + 1] = static_cast<float>(sums[2] / sums[0]);
    const double softplus = peak_y > 20.0 ? peak_y : std::log1p(std::exp(peak_y));  // torch's threshold
    status[k] = static_cast<float>(1.0 / (1.0 + std::exp(-sharpness * (softplus - gamma))));
  }
}

std::tuple<at::Tensor, at::Tensor> softargmax_head(const at::Tensor& v, const at::Tensor& rim_index,
                                                   const at::Tensor& rim_delta, double slope, const at::Tensor& sign,
                                                   const at::Tensor& shift, const at::Tensor& row_in,
                                                   const at::Tensor& row_y, const at::Tensor& col_in,
                                                   const at::Tensor& col_x, const at::Tensor& totals, double gamma,
                                                   double sharpness) {
  constexpr const char* op = "softargmax_head";
  check_grid(v, op);
  const int64_t N = v.size(0), C = v.size(1), I = v.size(2), J = v.size(3);
  check_float_cpu(sign, op, "sign");
  check_float_cpu(shift, op, "shift");
  const int64_t K = sign.numel();
  TORCH_CHECK_VALUE(K > 0 && sign.is_contiguous() && shift.is_contiguous() && shift.numel() == K, op,
                    ": expected contiguous sign and shift with one entry per keypoint, got ", sign.sizes(), " and ",
                    shift.sizes());
  TORCH_CHECK_VALUE(C % K == 0, op, ": expected the channels (", C, ") to be phases x keypoints (", K,
                    " keypoints)");
  check_rim(rim_index, rim_delta, I * J, C, op);
  check_table(row_in, I, C, op, "row_in");
  check_table(row_y, I, C, op, "row_y");
  check_table(col_in, J, C, op, "col_in");
  check_table(col_x, J, C, op, "col_x");
  check_float_cpu(totals, op, "totals");
  TORCH_CHECK_VALUE(totals.numel() == 3 && totals.is_contiguous(), op,
                    ": expected totals with 3 entries (count, sum x, sum y), got shape ", totals.sizes());

  at::Tensor keypoints = at::empty({N, K, 2}, v.options().memory_format(at::MemoryFormat::Contiguous));
  at::Tensor status = at::empty({N, K}, keypoints.options());
  if (N == 0) return {keypoints, status};
  const int64_t Cp = padded(C);
  std::vector<float> sign_c(Cp, 1.0f);  // s_k for every channel c = g * K + k
  for (int64_t c = 0; c < C; ++c) sign_c[c] = sign.data_ptr<float>()[c % K];
  const std::vector<float> col_in_p = pad_table(col_in, Cp), col_x_p = pad_table(col_x, Cp);
  const float* t = totals.data_ptr<float>();
  const double totals_d[3] = {t[0], t[1], t[2]};
  const HeadArgs args{v.data_ptr<float>(), rim_index.data_ptr<int64_t>(), rim_delta.data_ptr<float>(),
                      rim_index.numel(), static_cast<float>(slope), sign_c.data(), row_in.data_ptr<float>(),
                      row_y.data_ptr<float>(), col_in_p.data(), col_x_p.data(), I, J, C, Cp};
  const int64_t blocks = std::max<int64_t>(1, (I + kRowsPerBlock - 1) / kRowsPerBlock);  // per image
  std::vector<std::vector<HeadState>> states(N, std::vector<HeadState>(blocks, HeadState(C)));
  at::parallel_for(0, N * blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / blocks, b = task % blocks;
      head_rows(args, n, b * kRowsPerBlock, std::min(I, (b + 1) * kRowsPerBlock), states[n][b]);
    }
  });
  for (int64_t n = 0; n < N; ++n)
    head_finish(states[n], K, C, shift.data_ptr<float>(), totals_d, gamma, sharpness,
                keypoints.data_ptr<float>() + n * K * 2, status.data_ptr<float>() + n * K);
  return {keypoints, status};
}

// --------------------------------------------------------------------------------------------
// rim_lrelu_interleave
// --------------------------------------------------------------------------------------------
//
// A hidden transposed layer, after its phase-stacked convolution v (channels-last
// (N, G C, I, J), G = s_h s_w phases, channel (p s_w + q) C + c, the bias map's interior added):
//
//     out[n, c, h, w] = lrelu(v[n, (p s_w + q) C + c, i, j] + rim[i, j, (p s_w + q) C + c])
//     with s_h i + p = row_start + h and s_w j + q = col_start + w,
//
// for h < row_stop - row_start and w < col_stop - col_start: the rim added, LeakyReLU, the
// phases interleaved (depth_to_space) and cropped, one read of v and one write of out
// (channels-last (N, C, H, W)).

// One output row: W positions of C channels; `src` is v's grid row i at phase row p (its
// channel offset p s_w C included), `rim[j]` that grid row's rim values or nullptr.
MINT_SIMD_CLONES
void interleave_row(const float* src, const float* const* rim, const float* zeros, float slope, int64_t GC,
                    int64_t C, int64_t s_w, int64_t col_start, int64_t W, int64_t p_offset, float* out) {
  for (int64_t w = 0; w < W; ++w) {
    const int64_t j = (col_start + w) / s_w, q = (col_start + w) % s_w;
    const float* in = src + j * GC + q * C;
    const float* add = rim[j] != nullptr ? rim[j] + p_offset + q * C : zeros;
    float* dst = out + w * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) dst[c] = leaky_relu(in[c] + add[c], slope);
  }
}

at::Tensor rim_lrelu_interleave(const at::Tensor& v, const at::Tensor& rim_index, const at::Tensor& rim_delta,
                                double slope, int64_t s_h, int64_t s_w, int64_t row_start, int64_t row_stop,
                                int64_t col_start, int64_t col_stop) {
  constexpr const char* op = "rim_lrelu_interleave";
  check_grid(v, op);
  const int64_t N = v.size(0), GC = v.size(1), I = v.size(2), J = v.size(3);
  TORCH_CHECK_VALUE(s_h >= 1 && s_w >= 1 && GC % (s_h * s_w) == 0, op, ": expected positive strides whose phases (",
                    s_h, " x ", s_w, ") divide the ", GC, " channels");
  TORCH_CHECK_VALUE(0 <= row_start && row_start < row_stop && row_stop <= s_h * I && 0 <= col_start &&
                        col_start < col_stop && col_stop <= s_w * J,
                    op, ": expected a non-empty crop [", row_start, ", ", row_stop, ") x [", col_start, ", ",
                    col_stop, ") inside the ", s_h * I, " x ", s_w * J, " interleaved output");
  check_rim(rim_index, rim_delta, I * J, GC, op);
  const int64_t C = GC / (s_h * s_w), H = row_stop - row_start, W = col_stop - col_start;
  at::Tensor out = at::empty({N, C, H, W}, v.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* src = v.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t* index = rim_index.data_ptr<int64_t>();
  const float* delta = rim_delta.data_ptr<float>();
  const int64_t rim = rim_index.numel();
  const std::vector<float> zeros(C, 0.0f);
  at::parallel_for(0, N * H, 16, [&](int64_t begin, int64_t end) {
    std::vector<const float*> rim_of(J);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / H, h = task % H;
      const int64_t i = (row_start + h) / s_h, p = (row_start + h) % s_h;
      rim_rows(index, rim, delta, GC, i * J, J, rim_of.data());
      const int64_t p_offset = p * s_w * C;
      interleave_row(src + (n * I + i) * J * GC + p_offset, rim_of.data(), zeros.data(), static_cast<float>(slope),
                     GC, C, s_w, col_start, W, p_offset, dst + (n * H + h) * W * C);
    }
  });
  return out;
}


// --------------------------------------------------------------------------------------------
// area_downsample
// --------------------------------------------------------------------------------------------
//
// uint8 frames (N, H, W, C), any strides, shrunk by integer factors f_y = H / h, f_x = W / w
// to contiguous (N, h, w, C) uint8:
//
//     out[n, i, j, c] = round(S / (f_y f_x)),  S = sum of frames[n, f_y i + a, f_x j + b, c]
//                                                 over a < f_y, b < f_x,
//
// rounded as OpenCV's cv2.resize(..., INTER_AREA) rounds for integer factors (it has a fast
// path for them): half up, (S + 2) >> 2, for exactly 2 x 2; otherwise S times the float32
// 1 / (f_y f_x), rounded to nearest even. tests/test_inference.py checks equality with cv2 for
// several factors. One output row sums its f_y input rows into an int32 row, then f_x
// neighbours per channel.

MINT_SIMD_CLONES
void add_row_u8(const uint8_t* src, int64_t count, int32_t* acc) {
#pragma omp simd
  for (int64_t k = 0; k < count; ++k) acc[k] += src[k];
}

// sums[m] = sum over b < fx of acc[first[m] + b C], for the M = w C outputs of one row
MINT_SIMD_CLONES
void sum_blocks(const int32_t* acc, const int32_t* first, int64_t M, int64_t fx, int64_t C, int32_t* sums) {
#pragma omp simd
  for (int64_t m = 0; m < M; ++m) sums[m] = acc[first[m]];
  for (int64_t b = 1; b < fx; ++b) {
    const int32_t* shifted = acc + b * C;
#pragma omp simd
    for (int64_t m = 0; m < M; ++m) sums[m] += shifted[first[m]];
  }
}

MINT_SIMD_CLONES
void round_means(const int32_t* sums, int64_t M, float scale, bool half_up, uint8_t* out) {
  if (half_up) {
#pragma omp simd
    for (int64_t m = 0; m < M; ++m) out[m] = static_cast<uint8_t>((sums[m] + 2) >> 2);
  } else {
    // The float32 product sum * scale, as cv2 forms it: exact in double (24-bit factors), then
    // rounded to float, so that the compiler cannot fuse it with the add below (an FMA skips that
    // rounding and changes ties). 0 <= mean <= 255: adding and removing 2^23 then rounds to the
    // nearest integer, ties to even (the default rounding mode), without a call into libm.
    const double scale64 = scale;
#pragma omp simd
    for (int64_t m = 0; m < M; ++m) {
      const float mean = static_cast<float>(static_cast<double>(sums[m]) * scale64);
      out[m] = static_cast<uint8_t>(static_cast<int32_t>((mean + 0x1p23f) - 0x1p23f));
    }
  }
}

at::Tensor area_downsample(const at::Tensor& frames, int64_t h, int64_t w) {
  constexpr const char* op = "area_downsample";
  TORCH_CHECK_VALUE(frames.dim() == 4, op, ": expected (N, H, W, C) frames, got ", frames.dim(), " dims ",
                    frames.sizes());
  TORCH_CHECK_VALUE(frames.device().is_cpu(), op, ": expected frames on the CPU, got ", frames.device());
  TORCH_CHECK_VALUE(frames.scalar_type() == at::kByte, op, ": expected uint8 frames, got ", frames.scalar_type());
  const int64_t N = frames.size(0), H = frames.size(1), W = frames.size(2), C = frames.size(3);
  TORCH_CHECK_VALUE(h >= 1 && w >= 1 && H % h == 0 && W % w == 0, op, ": expected an output size that divides the ",
                    H, " x ", W, " frames, got ", h, " x ", w);
  // W C bytes per input row, read in place when its pixels and channels are contiguous
  at::Tensor in = frames.stride(3) == 1 && frames.stride(2) == C ? frames : frames.contiguous();
  const int64_t fy = H / h, fx = W / w, M = w * C;
  const int64_t s_n = in.stride(0), s_h = in.stride(1);
  at::Tensor out = at::empty({N, h, w, C}, frames.options().memory_format(at::MemoryFormat::Contiguous));
  const uint8_t* src = in.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  const float scale = 1.0f / static_cast<float>(fy * fx);
  const bool half_up = fy == 2 && fx == 2;
  std::vector<int32_t> first(M);  // output m = j C + c starts its block at input column j fx, channel c
  for (int64_t m = 0; m < M; ++m) first[m] = static_cast<int32_t>((m / C) * fx * C + m % C);
  at::parallel_for(0, N * h, 8, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> acc(W * C), sums(M);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / h, i = task % h;
      std::fill(acc.begin(), acc.end(), 0);
      for (int64_t a = 0; a < fy; ++a) add_row_u8(src + n * s_n + (i * fy + a) * s_h, W * C, acc.data());
      sum_blocks(acc.data(), first.data(), M, fx, C, sums.data());
      round_means(sums.data(), M, scale, half_up, dst + (n * h + i) * M);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(mint_rl_inference, m) {
  m.def(
      "softargmax_head(Tensor v, Tensor rim_index, Tensor rim_delta, float slope, Tensor sign, Tensor shift, "
      "Tensor row_in, Tensor row_y, Tensor col_in, Tensor col_x, Tensor totals, float gamma, float sharpness) "
      "-> (Tensor, Tensor)");
  m.def(
      "rim_lrelu_interleave(Tensor v, Tensor rim_index, Tensor rim_delta, float slope, int s_h, int s_w, "
      "int row_start, int row_stop, int col_start, int col_stop) -> Tensor");
  m.def("area_downsample(Tensor frames, int h, int w) -> Tensor");
}

TORCH_LIBRARY_IMPL(mint_rl_inference, CPU, m) {
  m.impl("softargmax_head", &softargmax_head);
  m.impl("rim_lrelu_interleave", &rim_lrelu_interleave);
  m.impl("area_downsample", &area_downsample);
}
