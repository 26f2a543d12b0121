import { marketSuite } from "./fixtures/market-suite.ts";
import { startMosquitto } from "./fixtures/mosquitto.ts";

// The same suite with Debian's mosquitto as the external broker (`--broker URL`).
marketSuite("mosquitto", async () => {
  const m = await startMosquitto();
  return { url: m.url, close: () => m.close() };
});
