import vm from "node:vm";
import { Ajv } from "ajv";
import { ColonyError } from "../../common/errors.ts";
import type { Check } from "../../common/protocol.ts";
import { MarketErrors } from "./errors.ts";

/**
 * A task's check decides success from the output alone. Compiled once at submit, so a bad regex
 * or schema is a `rejected` event (CHECK_INVALID) instead of a failure after the work is done.
 */
export type CheckFn = (output: string) => boolean;

/**
 * A submitter's check runs on an agent's output inside the coordinator's event loop: a
 * catastrophic regex (`^(a+)+$`, also as a JSON-schema `pattern`) could stall the whole market.
 * Checks run under a vm timeout instead, which V8 can interrupt mid-match; out of time = failed.
 */
export const CHECK_TIMEOUT_MS = 100;
const boundedContext = vm.createContext({ f: (_: unknown) => false, x: undefined as unknown });
const boundedScript = new vm.Script("f(x)");

function bounded(f: (x: never) => unknown, x: unknown): boolean {
  boundedContext.f = f;
  boundedContext.x = x;
  try {
    return boundedScript.runInContext(boundedContext, { timeout: CHECK_TIMEOUT_MS }) === true;
  } catch {
    return false;
  } finally {
    boundedContext.x = undefined;
  }
}

// One Ajv instance: compiling schemas is the costly part, and strict mode reports bad schemas.
const ajv = new Ajv({ allErrors: false, strict: false });

export function compileCheck(check: Check): CheckFn {
  switch (check.type) {
    case "exact":
      return check.trim === false ? (out) => out === check.value : (out) => out.trim() === check.value.trim();
    case "regex": {
      let re: RegExp;
      try {
        re = new RegExp(check.pattern, check.flags ?? "");
      } catch (err) {
        throw new ColonyError(MarketErrors.CHECK_INVALID, `check regex does not compile: ${(err as Error).message}`);
      }
      return (out) => bounded((text: string) => re.test(text), out);
    }
    case "json-schema": {
      let validate: ReturnType<Ajv["compile"]>;
      try {
        validate = ajv.compile(check.schema);
      } catch (err) {
        throw new ColonyError(MarketErrors.CHECK_INVALID, `check JSON schema is invalid: ${(err as Error).message}`);
      }
      return (out) => {
        let value: unknown;
        try {
          value = JSON.parse(out);
        } catch {
          return false;
        }
        return bounded((v: unknown) => validate(v) === true, value);
      };
    }
  }
}
