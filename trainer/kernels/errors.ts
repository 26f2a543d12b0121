import { defineErrors } from "../../common/errors.ts";

/** Error codes of the trainer's dense kernels (trainer/kernels.ts); documented in docs/errors.md. */
export const KernelErrors = defineErrors("kernels", {
  KERNEL_SHAPE_INVALID: "A kernel got a negative or non-integer size, or an array shorter than its [rows, cols] shape.",
  KERNEL_OPTIONS_INVALID: "An unknown kernel backend name or a thread count outside 1..256 (setKernelBackend, setKernelThreads, COLONY_KERNELS, COLONY_KERNEL_THREADS).",
  KERNEL_BACKEND_UNAVAILABLE: "A backend was required (COLONY_KERNELS=native or wasm, setKernelBackend) but could not be built or loaded; the message carries the reason (e.g. the compiler's error).",
});
