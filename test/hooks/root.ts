// Placeholder: starts the real broker once the kafka-local module lands.
export const mochaHooks = {};
