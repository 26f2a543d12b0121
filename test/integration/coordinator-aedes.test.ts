import { marketSuite } from "../fixtures/market-suite.ts";

// The market against the coordinator's embedded aedes broker, with fleet authentication on:
// bidders connect with node credentials, the submitter with a submitter credential.
marketSuite("aedes", async () => ({ close: async () => {} }));
