import { defineErrors } from "../common/errors.ts";

/**
 * Error codes of the GGUF toolkit (reader, writer, `colony gguf`). The reader is the fleet's first
 * line of defence before llama.cpp parses a received model, so each structural problem has its own
 * code; docs/gguf.md and docs/errors.md explain them.
 */
export const GgufErrors = defineErrors("gguf", {
  GGUF_BAD_MAGIC: "The data does not start with the GGUF magic bytes.",
  GGUF_UNSUPPORTED_VERSION: "The GGUF version is not 3 (the only version Colony reads).",
  GGUF_TRUNCATED: "A length, count or tensor points past the end of the file.",
  GGUF_LIMIT_EXCEEDED: "A count, string, array, tensor or the file exceeds one of the reader's limits.",
  GGUF_BAD_TYPE: "Unknown metadata value type or ggml tensor type, or a key with the wrong type (e.g. general.alignment).",
  GGUF_BAD_STRING: "A key, string value or tensor name is empty where it must not be, not valid UTF-8, or too long.",
  GGUF_DUPLICATE: "A metadata key or tensor name appears twice.",
  GGUF_BAD_SHAPE: "A tensor has 0 or more than 4 dimensions, a zero dimension, too many elements, or a row length that is not a multiple of its type's block size.",
  GGUF_BAD_OFFSET: "A tensor offset is misaligned, overlaps another tensor, or the alignment is not a power of two.",
  GGUF_TRAILING_DATA: "Bytes follow the last tensor beyond the alignment padding (rejected unless allowed).",
  GGUF_UNSUPPORTED_TENSOR_TYPE: "Tensor data was requested for a type the reader cannot convert (only F32 and F16).",
  GGUF_WRITE_INVALID: "The writer was given an invalid file: bad value for its type, bad name, shape or data length.",
  GGUF_FILE_UNREADABLE: "The GGUF file could not be opened or read.",
  GGUF_MODEL_INVALID: "A structurally valid GGUF file is not a model llama.cpp can load safely (bad vocabulary, hyperparameters out of range or inconsistent, a tensor missing, extra, misshapen or of the wrong type).",
  GGUF_MODEL_UNCHECKED: "The model is outside what the model gate can fully check (an architecture other than llama, a tokenizer other than SPM, an adapter or split file, an unknown architecture key, a tensor type the gate does not model).",
});
