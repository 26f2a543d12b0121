/**
 * Fleet authentication, the promised import path: the fleet secret, stateless HMAC credentials,
 * the aedes hooks with the topic ACL, and the mosquitto config generator. Details in coordinator/auth/.
 */
export { loadFleetSecret, loadOrCreateFleetSecret, parseFleetSecret, FLEET_SECRET_BYTES, FLEET_SECRET_FILE } from "./auth/secret.ts";
export { issueCredential, nodeCredentialFile, verifyCredential, parseUsername, usernameFor, ROLES, type Role, type Principal, type Credential } from "./auth/credentials.ts";
export { createAedesAuthHooks, type AedesAuthHooks, type AedesAuthOptions } from "./auth/aedes-hooks.ts";
export { checkPublish, checkSubscribe } from "./auth/acl.ts";
export { AuthErrors } from "./auth/errors.ts";
export { renderMosquittoFiles, writeMosquittoFiles, mosquittoPasswordHash, type MosquittoFleet, type IssuedUser, type MosquittoTls, type MosquittoListenerOptions } from "./auth/mosquitto-config.ts";
