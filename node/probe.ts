/**
 * Hardware probe: reads systeminformation in the background on a timer and keeps the latest
 * snapshot, so the bid path reads it synchronously and never waits for the OS (currentLoad() takes
 * ~0.5 s here and reports 0 on its first call). Battery, temperature and GPU are missing in
 * containers and on many boards: they become undefined, never an error. Tests inject readings.
 */
import os from "node:os";
import type { Logger } from "../common/logger.ts";
import type { HardwareIdentity } from "./profile.ts";

export interface ProbeSnapshot {
  /** Whole-machine CPU load in percent (0-100). */
  cpuLoad: number;
  freeMemMB: number;
  totalMemMB: number;
  batteryPercent?: number | undefined;
  /** True when charging or on mains power; undefined without a battery. */
  charging?: boolean | undefined;
  temperatureC?: number | undefined;
  gpuModel?: string | undefined;
  gpuMemMB?: number | undefined;
  /** Epoch ms of the reading. */
  at: number;
}

export type ProbeReader = () => Promise<Partial<ProbeSnapshot>>;

export interface ProbeOptions {
  /** How often to refresh; default 2000 ms. */
  intervalMs?: number;
  /** Replaces systeminformation (tests). */
  reader?: ProbeReader;
  logger?: Logger;
  now?: () => number;
}

function finite(n: unknown): number | undefined {
  return typeof n === "number" && Number.isFinite(n) ? n : undefined;
}

/**
 * Reads snapshots with systeminformation in a worker thread (see probe-worker.mjs for why); each
 * source fails on its own. The GPU is read once: it does not change, and lspci is slow.
 */
export function systemReader(): ProbeReader & { close(): Promise<void> } {
  let worker: import("node:worker_threads").Worker | undefined;
  let nextId = 0;
  const pending = new Map<number, (r: Record<string, any>) => void>();
  let gpu: Partial<ProbeSnapshot> | undefined;
  const call = async (calls: string[]): Promise<Record<string, any>> => {
    if (!worker) {
      const { Worker } = await import("node:worker_threads");
      worker = new Worker(new URL("./probe-worker.mjs", import.meta.url));
      worker.unref();
      worker.on("message", (m: { id: number; results: Record<string, any> }) => {
        pending.get(m.id)?.(m.results);
        pending.delete(m.id);
      });
      worker.on("error", () => {
        for (const r of pending.values()) r({});
        pending.clear();
        worker = undefined;
      });
    }
    const id = nextId++;
    return new Promise((resolve) => {
      pending.set(id, resolve);
      worker!.postMessage({ id, calls });
    });
  };
  const read = async (): Promise<Partial<ProbeSnapshot>> => {
    const r = await call(gpu ? ["currentLoad", "mem", "battery", "cpuTemperature"] : ["currentLoad", "mem", "battery", "cpuTemperature", "graphics"]);
    const out: Partial<ProbeSnapshot> = {};
    if (r.currentLoad) out.cpuLoad = finite(r.currentLoad.currentLoad) ?? 0;
    if (r.mem) {
      out.freeMemMB = Math.round(r.mem.available / 2 ** 20);
      out.totalMemMB = Math.round(r.mem.total / 2 ** 20);
    }
    if (r.battery?.hasBattery) {
      out.batteryPercent = finite(r.battery.percent);
      out.charging = Boolean(r.battery.isCharging || r.battery.acConnected);
    }
    const t = finite(r.cpuTemperature?.main);
    if (t !== undefined && t > -50 && t < 200) out.temperatureC = t;
    if (!gpu) {
      gpu = {};
      const controllers: Array<{ model?: string; vram?: number | null }> = r.graphics?.controllers ?? [];
      const g = controllers.find((c) => c.vram && c.vram > 0) ?? controllers[0];
      if (g) {
        gpu.gpuModel = g.model || undefined;
        gpu.gpuMemMB = finite(g.vram ?? undefined);
      }
    }
    return { ...out, ...gpu };
  };
  return Object.assign(read, {
    close: async () => {
      const w = worker;
      worker = undefined;
      await w?.terminate();
    },
  });
}

/** The identity used to pick a device profile. */
export async function readHardwareIdentity(): Promise<HardwareIdentity & { physicalCores: number }> {
  const si = (await import("systeminformation")).default;
  const [system, cpu, battery] = await Promise.allSettled([si.system(), si.cpu(), si.battery()]);
  return {
    systemModel: system.status === "fulfilled" ? system.value.model : undefined,
    systemManufacturer: system.status === "fulfilled" ? system.value.manufacturer : undefined,
    cpuBrand: cpu.status === "fulfilled" ? `${cpu.value.manufacturer} ${cpu.value.brand}` : undefined,
    arch: os.arch(),
    hasBattery: battery.status === "fulfilled" ? battery.value.hasBattery : false,
    physicalCores: (cpu.status === "fulfilled" ? cpu.value.physicalCores : 0) || os.availableParallelism(),
  };
}

export class DeviceProbe {
  private snap: ProbeSnapshot;
  private override: Partial<ProbeSnapshot> = {};
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private readonly reader: ProbeReader & { close?: () => Promise<void> };
  private readonly now: () => number;

  constructor(private readonly opts: ProbeOptions = {}) {
    this.reader = opts.reader ?? systemReader();
    this.now = opts.now ?? Date.now;
    // Until the first reading lands: what Node knows synchronously.
    this.snap = { cpuLoad: 0, freeMemMB: Math.round(os.freemem() / 2 ** 20), totalMemMB: Math.round(os.totalmem() / 2 ** 20), at: this.now() };
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** Reads once now (at most one read runs at a time). */
  refresh(): Promise<void> {
    this.inFlight ??= (async () => {
      try {
        const r = await this.reader();
        if (!this.closed) this.snap = { ...this.snap, ...r, at: this.now() };
      } catch (err) {
        this.opts.logger?.warn({ err }, "hardware probe failed; keeping the last reading");
      } finally {
        this.inFlight = undefined;
      }
    })();
    return this.inFlight;
  }

  /** The latest reading with injected values on top. Synchronous: safe on the bid path. */
  snapshot(): ProbeSnapshot {
    // Free memory moves fast when models load; os.freemem() is a cheap sync syscall (MemAvailable).
    const live = { freeMemMB: Math.round(os.freemem() / 2 ** 20) };
    return { ...this.snap, ...live, ...this.override };
  }

  /** Tests and `colony node --simulate`: pin readings (undefined values remove a pin). */
  inject(values: Partial<ProbeSnapshot>): void {
    const next: Partial<ProbeSnapshot> = { ...this.override };
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete (next as Record<string, unknown>)[k];
      else (next as Record<string, unknown>)[k] = v;
    }
    this.override = next;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    await this.reader.close?.();
  }
}
