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

/** Reads one snapshot with systeminformation; each source fails on its own. */
export async function readSystem(): Promise<Partial<ProbeSnapshot>> {
  const si = (await import("systeminformation")).default;
  const [load, mem, battery, temp, graphics] = await Promise.allSettled([si.currentLoad(), si.mem(), si.battery(), si.cpuTemperature(), si.graphics()]);
  const out: Partial<ProbeSnapshot> = {};
  if (load.status === "fulfilled") out.cpuLoad = finite(load.value.currentLoad) ?? 0;
  if (mem.status === "fulfilled") {
    out.freeMemMB = Math.round(mem.value.available / 2 ** 20);
    out.totalMemMB = Math.round(mem.value.total / 2 ** 20);
  }
  if (battery.status === "fulfilled" && battery.value.hasBattery) {
    out.batteryPercent = finite(battery.value.percent);
    out.charging = Boolean(battery.value.isCharging || battery.value.acConnected);
  }
  if (temp.status === "fulfilled") {
    const t = finite(temp.value.main);
    if (t !== undefined && t > -50 && t < 200) out.temperatureC = t;
  }
  if (graphics.status === "fulfilled") {
    const gpu = graphics.value.controllers.find((c) => c.vram && c.vram > 0) ?? graphics.value.controllers[0];
    if (gpu) {
      out.gpuModel = gpu.model || undefined;
      out.gpuMemMB = finite(gpu.vram ?? undefined);
    }
  }
  return out;
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
  private readonly reader: ProbeReader;
  private readonly now: () => number;

  constructor(private readonly opts: ProbeOptions = {}) {
    this.reader = opts.reader ?? readSystem;
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
  }
}
