/** Vitest global setup: nothing shared yet; helpers that need one-time set-up (compiling the Kafka mock launcher) hook in here. */
export default async function setup(): Promise<void> {}
