import { defineErrors } from "../../common/errors.ts";

/** Error codes of fleet authentication: the fleet secret, credentials and broker config generation. */
export const AuthErrors = defineErrors("auth", {
  FLEET_SECRET_INSECURE: "The fleet secret file is readable or writable by group or others (chmod 600), or its folder is writable by them (chmod 700).",
  FLEET_SECRET_INVALID: "The fleet secret file does not hold exactly 32 bytes (raw, or 64 hex characters).",
  FLEET_SECRET_UNREADABLE: "The fleet secret file or its data folder could not be read or created.",
  FLEET_SECRET_MISSING: "A process that must use the fleet's existing secret (`colony broker`) found none in its data folder: copy fleet.secret from the coordinator host (mode 0600).",
  CREDENTIAL_ROLE_INVALID: "A credential was asked for a role other than node, submitter or coordinator.",
  CREDENTIAL_NAME_INVALID: "A node or submitter name is not a valid id (1-128 of [A-Za-z0-9._-]) or cannot be used with the chosen broker.",
  MOSQUITTO_CONFIG_FAILED: "The mosquitto config, password or ACL files could not be written.",
});
