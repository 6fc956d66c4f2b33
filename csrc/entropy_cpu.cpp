// Local-entropy kernels for CPU tensors (at::parallel_for / OpenMP over batch x rows) and the
// Python binding of mint_rl._C. With MINT_WITH_CUDA defined, the same entry points dispatch CUDA
// tensors to the launchers in entropy_cuda.cu. The per-pixel arithmetic lives in
// entropy_kernels.h and is shared with the CUDA kernels.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <vector>

#include "entropy_kernels.h"

#ifdef MINT_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

// Launchers in entropy_cuda.cu; the caller makes the tensor's device current and passes the
// current stream (a cudaStream_t) as void*.
at::Tensor entropy_hard_cuda(const at::Tensor& x, int64_t region, void* stream);
at::Tensor entropy_soft_cuda(const at::Tensor& x, int64_t region, double bandwidth, void* stream);
at::Tensor published_entropy_cuda(const at::Tensor& x, int64_t region, double bandwidth, void* stream);

namespace {
void* current_stream(const at::Tensor& x) {
  return static_cast<void*>(c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
}
}  // namespace
#endif

namespace {

constexpr int64_t kMaxRegion = 31;

void check_frames(const at::Tensor& x, int64_t region, const char* name) {
  TORCH_CHECK_VALUE(x.dim() == 4 && x.size(1) == 3, name, ": expected frames of shape (N, 3, H, W), got ",
                    x.sizes());
  TORCH_CHECK_VALUE(region >= 1 && region % 2 == 1 && region <= kMaxRegion, name,
                    ": expected an odd region size in [1, ", kMaxRegion, "], got ", region);
  TORCH_CHECK_VALUE(x.size(2) >= region && x.size(3) >= region, name, ": expected H and W >= region size ",
                    region, ", got H=", x.size(2), ", W=", x.size(3));
}

std::vector<float> delta_table(int n) {
  std::vector<float> delta(n + 1);
  for (int c = 0; c <= n; ++c) delta[c] = static_cast<float>(mint::hard_delta(c, n));
  return delta;
}

at::Tensor entropy_hard_cpu(const at::Tensor& input, int64_t region) {
  const at::Tensor x = input.contiguous();
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int R = static_cast<int>(region), r = R / 2, n = 3 * R * R;
  at::Tensor out = at::zeros({N, H, W}, x.options().dtype(at::kFloat));
  if (N == 0) return out;
  const std::vector<float> delta = delta_table(n);
  const uint8_t* src = x.data_ptr<uint8_t>();
  float* dst = out.data_ptr<float>();
  const int64_t Ho = H - R + 1, Wo = W - R + 1;
  at::parallel_for(0, N * Ho, 1, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> counts(mint::kBins, 0);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t i = row / Ho;
      const int y0 = static_cast<int>(row % Ho);
      const uint8_t* img = src + i * 3 * H * W;
      float* o = dst + (i * H + y0 + r) * W + r;
      for (int x0 = 0; x0 < Wo; ++x0)
        o[x0] = mint::hard_patch_entropy<int32_t>(img, static_cast<int>(H), static_cast<int>(W), y0,
                                                  x0, R, counts.data(), 1, delta.data());
    }
  });
  return out;
}

at::Tensor entropy_soft_cpu(const at::Tensor& input, int64_t region, double bandwidth) {
  const at::Tensor x = input.contiguous();
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int R = static_cast<int>(region), r = R / 2;
  at::Tensor out = at::zeros({N, H, W}, x.options().dtype(at::kFloat));
  if (N == 0) return out;
  float* dst = out.data_ptr<float>();
  const int64_t Ho = H - R + 1, Wo = W - R + 1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "entropy_soft_cpu", [&] {
    const scalar_t* src = x.data_ptr<scalar_t>();
    at::parallel_for(0, N * Ho, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> hist(mint::kBins, 0.0);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t i = row / Ho;
        const int y0 = static_cast<int>(row % Ho);
        const scalar_t* img = src + i * 3 * H * W;
        float* o = dst + (i * H + y0 + r) * W + r;
        for (int x0 = 0; x0 < Wo; ++x0)
          o[x0] = mint::soft_patch_entropy<scalar_t, double>(img, static_cast<int>(H), static_cast<int>(W),
                                                             y0, x0, R, bandwidth, hist.data(), 1);
      }
    });
  });
  return out;
}

}  // namespace

// Hard-histogram entropy of integer frames: uint8 (N, 3, H, W) -> float32 (N, H, W), border zero.
at::Tensor entropy_hard(const at::Tensor& x, int64_t region) {
  check_frames(x, region, "entropy_hard");
  TORCH_CHECK_VALUE(x.scalar_type() == at::kByte, "entropy_hard: expected uint8 frames, got ", x.scalar_type());
  if (x.is_cuda()) {
#ifdef MINT_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    return entropy_hard_cuda(x, region, current_stream(x));
#else
    TORCH_CHECK(false, "entropy_hard: mint_rl._C was built without CUDA kernels, got a CUDA tensor");
#endif
  }
  TORCH_CHECK(x.device().is_cpu(), "entropy_hard: expected a CPU or CUDA tensor, got ", x.device());
  return entropy_hard_cpu(x, region);
}

// Soft-KDE entropy of real frames: float32/float64 (N, 3, H, W) in [0, 255] -> float32 (N, H, W).
at::Tensor entropy_soft(const at::Tensor& x, int64_t region, double bandwidth) {
  check_frames(x, region, "entropy_soft");
  TORCH_CHECK_VALUE(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
                    "entropy_soft: expected float32 or float64 frames, got ", x.scalar_type());
  TORCH_CHECK_VALUE(bandwidth > 0.0, "entropy_soft: expected bandwidth > 0, got ", bandwidth);
  if (x.is_cuda()) {
#ifdef MINT_WITH_CUDA
    const c10::cuda::CUDAGuard guard(x.device());
    return entropy_soft_cuda(x, region, bandwidth, current_stream(x));
#else
    TORCH_CHECK(false, "entropy_soft: mint_rl._C was built without CUDA kernels, got a CUDA tensor");
#endif
  }
  TORCH_CHECK(x.device().is_cpu(), "entropy_soft: expected a CPU or CUDA tensor, got ", x.device());
  return entropy_soft_cpu(x, region, bandwidth);
}

// The 256-bin soft histogram of a set of samples (1-D, any length >= 1), as the soft path builds
// it for one patch: float64 (256,), sums to one. Exposed for tests.
at::Tensor soft_histogram(const at::Tensor& samples, double bandwidth) {
  TORCH_CHECK_VALUE(samples.dim() == 1 && samples.numel() >= 1,
                    "soft_histogram: expected a non-empty 1-D tensor, got shape ", samples.sizes());
  TORCH_CHECK_VALUE(bandwidth > 0.0, "soft_histogram: expected bandwidth > 0, got ", bandwidth);
  const at::Tensor s = samples.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor hist = at::zeros({mint::kBins}, s.options());
  const double* v = s.data_ptr<double>();
  double* h = hist.data_ptr<double>();
  const double w = 1.0 / static_cast<double>(s.numel());
  int lo = mint::kBins, hi = -1;
  for (int64_t i = 0; i < s.numel(); ++i) mint::soft_accumulate(v[i], bandwidth, w, h, 1, lo, hi);
  return hist;
}

bool with_cuda() {
#ifdef MINT_WITH_CUDA
  return true;
#else
  return false;
#endif
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mint_rl local-entropy kernels (C++/OpenMP for CPU tensors, CUDA when built with it)";
  m.def("entropy_hard", &entropy_hard, "hard-histogram local entropy, uint8 (N,3,H,W) -> float32 (N,H,W)",
        py::arg("frames"), py::arg("region"));
  m.def("entropy_soft", &entropy_soft, "soft-KDE local entropy, float (N,3,H,W) -> float32 (N,H,W)",
        py::arg("frames"), py::arg("region"), py::arg("bandwidth"));
  m.def("soft_histogram", &soft_histogram, "256-bin soft histogram of 1-D samples (float64, sums to 1)",
        py::arg("samples"), py::arg("bandwidth"));
  m.def("with_cuda", &with_cuda, "whether the CUDA kernels were compiled in");
  m.def("max_region", [] { return kMaxRegion; }, "largest supported region size");
#ifdef MINT_WITH_CUDA
  m.def(
      "published_entropy_cuda",
      [](const at::Tensor& x, int64_t region, double bandwidth) {
        TORCH_CHECK_VALUE(x.is_cuda(), "published_entropy_cuda: expected a CUDA tensor, got ", x.device());
        const c10::cuda::CUDAGuard guard(x.device());
        return published_entropy_cuda(x, region, bandwidth, current_stream(x));
      },
        "benchmark only: the published thread-per-bin CUDA design (L=1/256 bins), float32 (N,3,H,W)",
        py::arg("frames"), py::arg("region"), py::arg("bandwidth"));
#endif
}
