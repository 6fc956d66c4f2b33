// CUDA launchers of the local-entropy layer: one thread per output pixel, running the per-pixel
// functions of entropy_kernels.h (the same code the CPU path runs). Built only when torch is a
// CUDA build and nvcc is found (setup.py defines MINT_WITH_CUDA then); entry points are
// dispatched from entropy_cpu.cpp.
//
// Hard path: each thread owns a 256-entry count buffer in shared memory, interleaved across the
// block (count of value v for thread t at counts[v * blockDim + t]); uint8 counts for up to 255
// samples (region <= 9), uint16 above. The delta table (term[c] - term[c-1]) is built per block in
// dynamic shared memory.
// Soft path: per-thread float64 histogram in local memory.
// published_entropy_cuda: benchmark-only port of the published design (one block per pixel, one
// thread per bin, bins of width 1/256), for timing against the hard path.
//
// Only ATen's device-independent headers and the CUDA runtime are included here (the caller in
// entropy_cpu.cpp sets the device guard and passes the current stream), so the file also
// compiles against the headers of a CPU-only torch wheel (the compile-only CI check).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "entropy_kernels.h"

namespace {

// The valid-patch pixel (image i, row y0, column x0 of the patch's top-left corner) of a flat
// index over N x Ho x Wo, with Ho = H - R + 1 and Wo = W - R + 1.
struct PatchPixel {
  int64_t i;
  int y0, x0;
};

__device__ inline PatchPixel patch_pixel(int64_t idx, int Ho, int Wo) {
  const int64_t t = idx / Wo;
  return {t / Ho, static_cast<int>(t % Ho), static_cast<int>(idx % Wo)};
}

template <typename CountT, int kThreads>
__global__ void hard_entropy_kernel(const uint8_t* __restrict__ x, float* __restrict__ out, int64_t N,
                                    int H, int W, int R) {
  __shared__ CountT counts[mint::kBins * kThreads];
  extern __shared__ float delta[];  // n + 1 entries
  const int n = 3 * R * R;
  for (int c = threadIdx.x; c <= n; c += blockDim.x) delta[c] = static_cast<float>(mint::hard_delta(c, n));
  for (int i = threadIdx.x; i < mint::kBins * kThreads; i += blockDim.x) counts[i] = 0;
  __syncthreads();
  const int Ho = H - R + 1, Wo = W - R + 1;
  const int64_t total = N * Ho * Wo;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const PatchPixel p = patch_pixel(idx, Ho, Wo);
  const int64_t i = p.i;
  const int y0 = p.y0, x0 = p.x0;
  const float e = mint::hard_patch_entropy<CountT>(x + i * 3 * H * W, H, W, y0, x0, R, counts + threadIdx.x,
                                                   kThreads, delta);
  out[(i * H + y0 + R / 2) * W + x0 + R / 2] = e;
}

template <typename T>
__global__ void soft_entropy_kernel(const T* __restrict__ x, float* __restrict__ out, int64_t N, int H,
                                    int W, int R, double bandwidth) {
  const int Ho = H - R + 1, Wo = W - R + 1;
  const int64_t total = N * Ho * Wo;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= total) return;
  const PatchPixel p = patch_pixel(idx, Ho, Wo);
  const int64_t i = p.i;
  const int y0 = p.y0, x0 = p.x0;
  double hist[mint::kBins];
  for (int b = 0; b < mint::kBins; ++b) hist[b] = 0.0;
  out[(i * H + y0 + R / 2) * W + x0 + R / 2] =
      mint::soft_patch_entropy<T, double>(x + i * 3 * H * W, H, W, y0, x0, R, bandwidth, hist, 1);
}

__device__ __forceinline__ float sigmoidf_(float v) { return 1.0f / (1.0f + expf(-v)); }

// Published design: block = one pixel, thread = one bin b; bin width L = 1/256, normalised by
// dmax = sig(L/2B) - sig(-L/2B); float32 throughout.
__global__ void published_entropy_kernel(const float* __restrict__ x, float* __restrict__ out, int H, int W,
                                         int R, float B) {
  __shared__ float partial[mint::kBins];
  const int Ho = H - R + 1, Wo = W - R + 1;
  const PatchPixel pp = patch_pixel(blockIdx.x, Ho, Wo);
  const int64_t i = pp.i;
  const int y0 = pp.y0, x0 = pp.x0;
  const float* img = x + i * 3 * H * W;
  const int b = threadIdx.x;
  const float L = 1.0f / 256.0f;
  const float dmax = sigmoidf_(L / (2.0f * B)) - sigmoidf_(-L / (2.0f * B));
  const int n = 3 * R * R;
  float acc = 0.0f;
  for (int c = 0; c < 3; ++c)
    for (int dy = 0; dy < R; ++dy)
      for (int dx = 0; dx < R; ++dx) {
        const float v = img[(static_cast<int64_t>(c) * H + y0 + dy) * W + x0 + dx];
        acc += sigmoidf_((v - b + L / 2.0f) / B) - sigmoidf_((v - b - L / 2.0f) / B);
      }
  const float p = acc / (n * dmax);
  partial[b] = -p * logf(p + 1e-8f);
  __syncthreads();
  for (int s = mint::kBins / 2; s > 0; s >>= 1) {
    if (b < s) partial[b] += partial[b + s];
    __syncthreads();
  }
  if (b == 0) out[(i * H + y0 + R / 2) * W + x0 + R / 2] = partial[0];
}

void check_launch(const char* name) {
  const cudaError_t err = cudaGetLastError();
  TORCH_CHECK(err == cudaSuccess, name, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

template <typename CountT, int kThreads>
void launch_hard(const at::Tensor& x, at::Tensor& out, int R, cudaStream_t stream) {
  const int64_t N = x.size(0);
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  const int64_t total = N * (H - R + 1) * (W - R + 1);
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const size_t shmem = static_cast<size_t>(3 * R * R + 1) * sizeof(float);
  hard_entropy_kernel<CountT, kThreads><<<static_cast<unsigned>(blocks), kThreads, shmem, stream>>>(
      x.data_ptr<uint8_t>(), out.data_ptr<float>(), N, H, W, R);
  check_launch("entropy_hard_cuda");
}

}  // namespace

// All launchers expect the caller to have made input.device() current and to pass its current
// stream.
at::Tensor entropy_hard_cuda(const at::Tensor& input, int64_t region, void* stream_ptr) {
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const at::Tensor x = input.contiguous();
  at::Tensor out = at::zeros({x.size(0), x.size(2), x.size(3)}, x.options().dtype(at::kFloat));
  if (x.size(0) == 0) return out;
  const int R = static_cast<int>(region);
  if (3 * R * R <= 255)
    launch_hard<uint8_t, 128>(x, out, R, stream);  // 32 KiB of counts per block
  else
    launch_hard<uint16_t, 64>(x, out, R, stream);  // 32 KiB of counts per block
  return out;
}

at::Tensor entropy_soft_cuda(const at::Tensor& input, int64_t region, double bandwidth, void* stream_ptr) {
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const at::Tensor x = input.contiguous();
  at::Tensor out = at::zeros({x.size(0), x.size(2), x.size(3)}, x.options().dtype(at::kFloat));
  if (x.size(0) == 0) return out;
  const int64_t N = x.size(0);
  const int R = static_cast<int>(region);
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  const int64_t total = N * (H - R + 1) * (W - R + 1);
  constexpr int kThreads = 128;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "entropy_soft_cuda", [&] {
    soft_entropy_kernel<scalar_t><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), out.data_ptr<float>(), N, H, W, R, bandwidth);
  });
  check_launch("entropy_soft_cuda");
  return out;
}

at::Tensor published_entropy_cuda(const at::Tensor& input, int64_t region, double bandwidth, void* stream_ptr) {
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  TORCH_CHECK_VALUE(input.is_cuda() && input.dim() == 4 && input.size(1) == 3,
                    "published_entropy_cuda: expected a CUDA tensor (N, 3, H, W), got ", input.sizes(), " on ",
                    input.device());
  const at::Tensor x = input.to(at::kFloat).contiguous();
  at::Tensor out = at::zeros({x.size(0), x.size(2), x.size(3)}, x.options());
  const int R = static_cast<int>(region);
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  TORCH_CHECK_VALUE(R >= 1 && R % 2 == 1 && H >= R && W >= R, "published_entropy_cuda: bad region ", R);
  const int64_t total = x.size(0) * (H - R + 1) * (W - R + 1);
  if (total == 0) return out;
  published_entropy_kernel<<<static_cast<unsigned>(total), mint::kBins, 0, stream>>>(
      x.data_ptr<float>(), out.data_ptr<float>(), H, W, R, static_cast<float>(bandwidth));
  check_launch("published_entropy_cuda");
  return out;
}
