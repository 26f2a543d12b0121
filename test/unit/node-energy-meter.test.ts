// Real energy readings (node/energy-meter.ts) on fake sysfs trees and a fake clock: RAPL counters
// with wrap-around, a discharging battery, the idle baseline, and when a task gets no reading.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FakeClock } from "../../common/clock.ts";
import { batteryMeter, BATTERY_MIN_INTERVAL_MS, detectMeter, EnergyAccount, powercapMeter, type EnergyMeter } from "../../node/energy-meter.ts";

function tree(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "colony-sysfs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("powercap: sums the package zones (not sub-zones) and survives a counter wrap", (t) => {
  const root = tree(t);
  const zone = (name: string, uj: number, range = 1_000_000) => {
    mkdirSync(path.join(root, name), { recursive: true });
    writeFileSync(path.join(root, name, "energy_uj"), String(uj));
    writeFileSync(path.join(root, name, "max_energy_range_uj"), String(range));
  };
  zone("intel-rapl:0", 100);
  zone("intel-rapl:1", 500);
  zone("intel-rapl:0:0", 7); // a sub-zone (core): already inside package 0
  const m = powercapMeter(root)!;
  assert.equal(m.source, "rapl");
  assert.equal(m.read(), 0);
  zone("intel-rapl:0", 2_100);
  zone("intel-rapl:1", 1_500);
  assert.equal(m.read(), (2000 + 1000) / 1e6);
  zone("intel-rapl:0", 100); // wrapped: 1_000_000 - 2_100 + 100
  assert.ok(Math.abs(m.read()! - (3000 + 998_000) / 1e6) < 1e-12);
  assert.equal(powercapMeter(path.join(root, "nope")), undefined);
  assert.equal(detectMeter({ powercap: root, powerSupply: path.join(root, "nope") })?.source, "rapl");
});

test("battery: counts energy drained while discharging, nothing while charging", (t) => {
  const root = tree(t);
  const bat = path.join(root, "BAT0");
  mkdirSync(bat);
  const set = (status: string, uWh: number) => {
    writeFileSync(path.join(bat, "status"), status);
    writeFileSync(path.join(bat, "energy_now"), String(uWh));
  };
  set("Discharging", 50_000_000);
  const m = batteryMeter(root)!;
  assert.equal(m.source, "battery");
  assert.equal(m.minIntervalMs, BATTERY_MIN_INTERVAL_MS);
  assert.equal(m.read(), 0);
  set("Discharging", 49_999_000); // 1000 uWh = 3.6 J
  assert.ok(Math.abs(m.read()! - 3.6) < 1e-9);
  set("Charging", 49_999_500);
  assert.equal(m.read(), undefined);
  assert.equal(detectMeter({ powercap: path.join(root, "none"), powerSupply: root })?.source, "battery");
});

test("energy account: a task is charged what it added above the idle baseline, alone; otherwise no reading", () => {
  const clock = new FakeClock();
  let joules = 0;
  const meter: EnergyMeter = { source: "rapl", minIntervalMs: 0, read: () => joules };
  const acc = new EnergyAccount(meter, clock);
  const run = (ms: number, watts: number) => {
    clock.advance(ms);
    joules += (watts * ms) / 1000;
  };
  acc.idle();
  // No baseline yet: the first task is modelled.
  const early = acc.begin();
  run(500, 10);
  assert.equal(acc.end(early), undefined);
  run(2000, 2); // idle at 2 W
  const m = acc.begin();
  assert.equal(acc.idleWatts, 2);
  run(1000, 10); // 10 W while the task runs: 8 W above idle for 1 s
  const r = acc.end(m)!;
  assert.equal(r.source, "rapl");
  assert.ok(Math.abs(r.joules - 8) < 1e-9, String(r.joules));
  // Two overlapping tasks cannot be told apart: neither gets a reading.
  run(2000, 2);
  const a = acc.begin();
  run(200, 10);
  const b = acc.begin();
  run(200, 18);
  assert.equal(acc.end(a), undefined);
  assert.equal(acc.end(b), undefined);
  // No meter at all: no reading, never an error.
  const none = new EnergyAccount(undefined, clock);
  none.idle();
  assert.equal(none.end(none.begin()), undefined);
});
