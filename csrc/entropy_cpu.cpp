// placeholder, replaced by the entropy implementation
#include <torch/extension.h>
bool with_cuda() { return false; }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("with_cuda", &with_cuda); }
