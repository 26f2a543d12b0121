// Runs submitters' regex and JSON-schema checks off the coordinator's event loop (checks.ts): a
// catastrophic regex may run for ever here; the main thread terminates this worker after its hard
// timeout and starts another. Plain JS so it loads in a worker without the tsx loader.
// Protocol: {id, check, output} -> {id, ok}.
import { parentPort } from "node:worker_threads";
import { Ajv } from "ajv";

// Compiled checks by their JSON text, least recently used first out. One Ajv for all (a new one
// costs ~15 ms: it compiles its meta-schema). `addUsedSchema: false` keeps a schema's `$id` out of
// the instance, so two submitters' schemas with the same `$id` do not collide; an evicted schema is
// removed from Ajv's own cache, so memory stays bounded by MAX_CACHED.
const MAX_CACHED = 256;
const cache = new Map();
const ajv = new Ajv({ allErrors: false, strict: false, addUsedSchema: false });

function compile(check) {
  if (check.type === "regex") {
    const re = new RegExp(check.pattern, check.flags ?? "");
    return { fn: (out) => re.test(out) };
  }
  const schema = check.schema;
  const validate = ajv.compile(schema);
  const fn = (out) => {
    let value;
    try {
      value = JSON.parse(out);
    } catch {
      return false;
    }
    return validate(value) === true;
  };
  return { fn, schema };
}

function evictOldest() {
  const [key, entry] = cache.entries().next().value;
  cache.delete(key);
  if (entry.schema !== undefined) ajv.removeSchema(entry.schema);
}

// Loaded: the main thread starts a check's clock only from here on (starting a worker takes longer
// than a check may).
parentPort.postMessage({ ready: true });

parentPort.on("message", ({ id, check, output }) => {
  let ok = false;
  try {
    const key = JSON.stringify(check);
    let entry = cache.get(key);
    if (entry) cache.delete(key);
    else entry = compile(check);
    cache.set(key, entry);
    if (cache.size > MAX_CACHED) evictOldest();
    ok = entry.fn(output) === true;
  } catch {
    ok = false;
  }
  parentPort.postMessage({ id, ok });
});
