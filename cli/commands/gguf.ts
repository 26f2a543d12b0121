import type { Command } from "commander";

/** `colony gguf`: the GGUF toolkit (docs/gguf.md). */
export function register(program: Command): void {
  const gguf = program.command("gguf").description("GGUF model files: inspect and check them with Colony's hardened reader");

  gguf
    .command("inspect")
    .description("check a GGUF file's header and print its metadata and tensors; exits 1 with an error code on a bad file")
    .argument("<file>", "path of the .gguf file")
    .option("--json", "print one JSON object instead of text")
    .option("--tensors", "include the per-tensor table (name, type, dims, offset, bytes)")
    .option("--array-items <n>", "array items shown before the rest is summarised (default 8)")
    .option("--lenient", "accept gaps between tensors and trailing bytes (llama.cpp itself rejects gaps)")
    .action(async (file: string, o: { json?: boolean; tensors?: boolean; arrayItems?: string; lenient?: boolean }) => {
      const { intArg } = await import("../../common/config.ts");
      const { ColonyError, CommonErrors } = await import("../../common/errors.ts");
      const { readGgufHeaderFromFile } = await import("../../gguf/reader.ts");
      const { inspectJson, inspectText } = await import("../../gguf/inspect.ts");
      const arrayItems = intArg("--array-items", o.arrayItems) ?? 8;
      if (arrayItems < 0) throw new ColonyError(CommonErrors.CLI_ARGUMENT_INVALID, "--array-items must be 0 or more");
      const header = await readGgufHeaderFromFile(file, o.lenient ? { strictLayout: false, allowTrailingData: true } : undefined);
      const opts = { arrayItems, tensors: o.tensors === true };
      process.stdout.write(o.json ? JSON.stringify(inspectJson(file, header, opts)) + "\n" : inspectText(file, header, opts));
    });

  gguf
    .command("check")
    .description("check that a GGUF file is safe to hand to llama.cpp: the hardened header check plus the model gate (vocabulary, every llama hyperparameter, the exact tensor set); exits 1 with an error code otherwise")
    .argument("<file>", "path of the .gguf model")
    .option("--json", "print one JSON object instead of text")
    .option("--allow-unchecked", "accept a file the gate does not model (another architecture or tokenizer, an adapter) after the vocabulary checks, as a node with allowUncheckedModels does")
    .action(async (file: string, o: { json?: boolean; allowUnchecked?: boolean }) => {
      const { readGgufHeaderFromFile } = await import("../../gguf/reader.ts");
      const { checkModel } = await import("../../gguf/llama-check.ts");
      const header = await readGgufHeaderFromFile(file);
      const { architecture, coverage, uncheckedReason } = checkModel(header, { allowUnchecked: o.allowUnchecked === true });
      const tokens = header.metadata.get("tokenizer.ggml.tokens")?.value;
      const summary = { file, ok: true, architecture, coverage, tensors: header.tensorInfos.length, vocab: Array.isArray(tokens) ? tokens.length : null, bytes: header.fileSize };
      const note = coverage === "basic" ? ` (vocabulary checks only: ${uncheckedReason})` : "";
      process.stdout.write(o.json ? JSON.stringify(summary) + "\n" : `ok: ${file}: ${architecture} model, ${summary.tensors} tensors, vocabulary ${summary.vocab ?? "none"}, ${summary.bytes} bytes${note}\n`);
    });
}
