// The operators' settings (docs/operations.md): metricsPort, homeAssistant, homeAssistantPrefix from
// env and flags, and the label values metrics may use (bounded).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadCoordinatorConfig } from "../../coordinator/config.ts";
import { attemptOutcomeLabel, outcomeLabel, skillLabel } from "../../coordinator/metrics/labels.ts";
import { haSlug } from "../../coordinator/home-assistant/discovery.ts";

test("metricsPort and Home Assistant settings: off by default, from env and flags, prefix outside colony/", () => {
  const d = loadCoordinatorConfig({ env: {} });
  assert.equal(d.metricsPort, undefined);
  assert.equal(d.homeAssistant, false);
  assert.equal(d.homeAssistantPrefix, "homeassistant");
  const e = loadCoordinatorConfig({ env: { COLONY_METRICS_PORT: "0", COLONY_HOME_ASSISTANT: "1", COLONY_HOME_ASSISTANT_PREFIX: "ha/test" } });
  assert.equal(e.metricsPort, 0);
  assert.equal(e.homeAssistant, true);
  assert.equal(e.homeAssistantPrefix, "ha/test");
  assert.equal(loadCoordinatorConfig({ env: { COLONY_METRICS_PORT: "9464" }, flags: { metricsPort: 9500 } }).metricsPort, 9500);
  for (const bad of ["colony/ha", "home/#", "+", ""]) assert.throws(() => loadCoordinatorConfig({ env: { COLONY_HOME_ASSISTANT_PREFIX: bad || " " } }), /homeAssistantPrefix/, bad);
  assert.throws(() => loadCoordinatorConfig({ env: { COLONY_METRICS_PORT: "70000" } }), /metricsPort/);
});

test("metric labels come from bounded sets; HA ids are HA-safe and distinct", () => {
  assert.equal(skillLabel("add"), "add");
  assert.equal(skillLabel("*"), "unlabeled");
  assert.equal(skillLabel("~c12"), "unlabeled");
  assert.equal(skillLabel("task-9f2c4e0b6a1d"), "other");
  assert.equal(outcomeLabel("ok", undefined), "ok");
  assert.equal(outcomeLabel("error", "NO_BIDDERS"), "no_bidders");
  assert.equal(outcomeLabel("error", "SCRIPTED_FAILURE_FROM_A_NODE"), "other_error");
  assert.equal(attemptOutcomeLabel("ack-timeout"), "ack_timeout");
  assert.equal(attemptOutcomeLabel("anything a peer made up"), "other");
  assert.equal(haSlug("pi-kitchen_1"), "pi-kitchen_1");
  assert.match(haSlug("pi.kitchen"), /^pi_kitchen_[0-9a-f]{6}$/);
  assert.notEqual(haSlug("pi.kitchen"), haSlug("pi:kitchen"));
});
