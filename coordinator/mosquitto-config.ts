/** Mosquitto config generation; the implementation lives in coordinator/auth/mosquitto-config.ts. */
export { renderMosquittoFiles, writeMosquittoFiles, mosquittoPasswordHash, type MosquittoFleet, type IssuedUser } from "./auth/mosquitto-config.ts";
