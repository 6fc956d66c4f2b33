// Per-pixel arithmetic of the local-entropy layer, shared by the CPU loop (entropy_cpu.cpp)
// and the CUDA kernels (entropy_cuda.cu). Every function here is `__host__ __device__` under
// nvcc and a plain inline function under a C++ compiler, so the CPU tests run exactly the code
// the GPU runs.
//
// Layout: one image is (3, H, W) contiguous, channel stride H*W, row stride W. The patch of the
// output pixel (y0 + R/2, x0 + R/2) is the R x R window whose top-left corner is (y0, x0), all
// three channels pooled: n = 3*R*R samples.
//
// Hard path (integer samples 0..255): entropy = -sum_v (c_v/n) ln(c_v/n + 1e-8) over the
// distinct values v with count c_v, clamped at 0 (the 1e-8 makes a single-valued patch -1e-8).
// Computed incrementally: when a count goes c-1 -> c the sum changes by
// delta[c] = term[c] - term[c-1], with term[c] = -(c/n) ln(c/n + 1e-8) and term[0] = 0.
//
// Soft path (any real samples in [0, 255]): unit-width bins centred on the integers 0..255; a
// sample v puts mass sigmoid((b + 0.5 - v)/h) - sigmoid((b - 0.5 - v)/h) into bin b, with the
// end bins open (bin 0 is (-inf, 0.5], bin 255 is (254.5, inf)), so each sample's mass sums to
// one. Bins farther than 0.5 + 40 h from v receive less than sigmoid(-40) ~ 4e-18 and are
// skipped.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MINT_HD __host__ __device__ __forceinline__
#else
#define MINT_HD inline
#endif

namespace mint {

constexpr int kBins = 256;
constexpr double kLogEps = 1e-8;      // the published layer's epsilon inside the logarithm
constexpr double kSoftReach = 40.0;   // bins within 0.5 + kSoftReach * h of a sample are evaluated

// term[c] - term[c-1] for the incremental hard entropy, in double (callers store it as float).
MINT_HD double hard_delta(int c, int n) {
  if (c <= 0) return 0.0;
  const double p1 = static_cast<double>(c) / n;
  const double p0 = static_cast<double>(c - 1) / n;
  const double t1 = -p1 * log(p1 + kLogEps);
  const double t0 = (c == 1) ? 0.0 : -p0 * log(p0 + kLogEps);
  return t1 - t0;
}

// Hard-histogram entropy of one patch of an integer image.
//   img    : start of one (3, H, W) image (uint8 values 0..255)
//   counts : kBins zeroed counters, counter of value v at counts[v * stride]; left zeroed
//   delta  : delta[c] = hard_delta(c, n) for c = 0..n
template <typename CountT>
MINT_HD float hard_patch_entropy(const uint8_t* img, int H, int W, int y0, int x0, int R,
                                 CountT* counts, int stride, const float* delta) {
  const int64_t plane = static_cast<int64_t>(H) * W;
  float h = 0.0f;
  int distinct = 0;
  for (int c = 0; c < 3; ++c) {
    const uint8_t* base = img + c * plane + static_cast<int64_t>(y0) * W + x0;
    for (int dy = 0; dy < R; ++dy) {
      const uint8_t* row = base + static_cast<int64_t>(dy) * W;
      for (int dx = 0; dx < R; ++dx) {
        CountT& k = counts[static_cast<int>(row[dx]) * stride];
        k = static_cast<CountT>(k + 1);
        distinct += (k == 1);
        h += delta[k];
      }
    }
  }
  // reset only the touched counters
  for (int c = 0; c < 3; ++c) {
    const uint8_t* base = img + c * plane + static_cast<int64_t>(y0) * W + x0;
    for (int dy = 0; dy < R; ++dy) {
      const uint8_t* row = base + static_cast<int64_t>(dy) * W;
      for (int dx = 0; dx < R; ++dx) counts[static_cast<int>(row[dx]) * stride] = 0;
    }
  }
  // A single-valued patch has entropy 0 exactly (the formula gives -ln(1 + 1e-8) plus float
  // rounding of the table; every other patch has entropy >= ln(n)/n > 0).
  return (distinct <= 1 || h < 0.0f) ? 0.0f : h;
}

MINT_HD double logistic(double x) { return 1.0 / (1.0 + exp(-x)); }

// Probability mass of a logistic kernel centred at v (scale h) inside bin b, end bins open.
MINT_HD double soft_bin_mass(double v, int b, double h) {
  const double upper = (b >= kBins - 1) ? 1.0 : logistic((b + 0.5 - v) / h);
  const double lower = (b <= 0) ? 0.0 : logistic((b - 0.5 - v) / h);
  return upper - lower;
}

// Add the mass of one sample v (weight w) to hist (bin b at hist[b * stride]) and widen the
// touched range [lo, hi].
template <typename AccT>
MINT_HD void soft_accumulate(double v, double h, double w, AccT* hist, int stride, int& lo,
                             int& hi) {
  const double reach = 0.5 + kSoftReach * h;
  double first = ceil(v - reach);
  double last = floor(v + reach);
  if (first < 0.0) first = 0.0;
  if (last > kBins - 1) last = kBins - 1;
  const int b0 = static_cast<int>(first);
  const int b1 = static_cast<int>(last);
  for (int b = b0; b <= b1; ++b) hist[b * stride] += static_cast<AccT>(w * soft_bin_mass(v, b, h));
  if (b0 < lo) lo = b0;
  if (b1 > hi) hi = b1;
}

// -sum_b p_b ln(p_b + 1e-8) over the touched bins [lo, hi]; zeroes them again.
template <typename AccT>
MINT_HD double soft_finish(AccT* hist, int stride, int lo, int hi) {
  double e = 0.0;
  for (int b = lo; b <= hi; ++b) {
    const double p = static_cast<double>(hist[b * stride]);
    if (p > 0.0) e -= p * log(p + kLogEps);
    hist[b * stride] = static_cast<AccT>(0);
  }
  return e > 0.0 ? e : 0.0;  // a single-bin histogram gives -ln(1 + 1e-8); entropy is >= 0
}

// Soft-KDE entropy of one patch of a real image with values in [0, 255].
//   hist : kBins zeroed accumulators at hist[b * stride]; left zeroed
template <typename T, typename AccT>
MINT_HD float soft_patch_entropy(const T* img, int H, int W, int y0, int x0, int R, double h,
                                 AccT* hist, int stride) {
  const int64_t plane = static_cast<int64_t>(H) * W;
  const double w = 1.0 / (3.0 * R * R);
  int lo = kBins, hi = -1;
  for (int c = 0; c < 3; ++c) {
    const T* base = img + c * plane + static_cast<int64_t>(y0) * W + x0;
    for (int dy = 0; dy < R; ++dy) {
      const T* row = base + static_cast<int64_t>(dy) * W;
      for (int dx = 0; dx < R; ++dx)
        soft_accumulate(static_cast<double>(row[dx]), h, w, hist, stride, lo, hi);
    }
  }
  return static_cast<float>(soft_finish(hist, stride, lo, hi));
}

}  // namespace mint
