/** Mosquitto config generation; the implementation lives in coordinator/auth/mosquitto-config.ts. */
export { renderMosquittoFiles, writeMosquittoFiles, mosquittoPasswordHash, type MosquittoFleet, type IssuedUser, type MosquittoTls, type MosquittoListenerOptions } from "./auth/mosquitto-config.ts";
