/** The data contracts, once (DESIGN.md "Contracts"): zod schemas and the types inferred from them. */
export * from './parse.ts';
export * from './jar.ts';
export * from './event.ts';
export * from './partner.ts';
export * from './request.ts';
export * from './dead-letter.ts';
export * from './jar-budget.ts';
export * from './delivery.ts';
