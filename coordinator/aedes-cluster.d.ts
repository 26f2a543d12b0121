// aedes-persistence-redis ships no types. The broker passes it ioredis options and hands the result
// to aedes unchanged (coordinator/broker.ts clusterPlugins).
declare module "aedes-persistence-redis" {
  const persistence: (options: Record<string, unknown>) => unknown;
  export default persistence;
}
