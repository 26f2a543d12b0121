// Runs systeminformation calls off the main thread: several of them (graphics, cpuTemperature) use
// execSync internally and blocked the daemon's event loop for 45-900 ms here, which would delay bids.
// Plain JS so it loads in a worker without the tsx loader. Protocol: {id, calls:[name]} -> {id, results}.
import { parentPort } from "node:worker_threads";
import si from "systeminformation";

parentPort.on("message", async ({ id, calls }) => {
  const settled = await Promise.allSettled(calls.map((name) => si[name]()));
  const results = {};
  calls.forEach((name, i) => {
    results[name] = settled[i].status === "fulfilled" ? settled[i].value : null;
  });
  parentPort.postMessage({ id, results });
});
