/** Runs measureTrainingThroughput in its own process (throughput.ts measureInChild): argv threads, minSeconds. */
import { measureTrainingThroughput } from "./throughput.ts";

const threads = Number(process.argv[2] ?? 1);
const minSeconds = Number(process.argv[3] ?? 1);
const t = await measureTrainingThroughput({ threads, minSeconds });
process.send!(t, undefined, {}, () => process.disconnect());
