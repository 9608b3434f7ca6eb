/** The dispatcher's processors (DESIGN.md "The dispatcher"): sender, policies, decisions. */
export { createDeliver, type Deliver, type DeliverOptions, type DeliveryObserver, type DeliveryOutcome, type NotSentReason, type PendingDelivery } from './deliver.ts';
export { createSender, parseResolve, type ResolveMap, type ResolveTarget, type Sender, type SenderOptions, type SendRequest, type SendResponse } from './sender.ts';
export { PartnerPolicies, breakerCounts, isNetworkError, type PartnerPolicy, type PolicyOptions } from './policies.ts';
export { backoffDelay, classifyStatus, retryAfterMs, windowEnd, type Backoff, type StatusClass } from './classify.ts';
export { cookiesFromResponse, type ParsedCookies } from './cookies.ts';
export { deliveryBody, deliveryHeaders, forwardedIp } from './headers.ts';
export { indexPartners, routeRequest, type PartnerIndex, type Routing } from './routing.ts';
