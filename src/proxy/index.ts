export { UpstreamPool, type ForwardRequest, type NodeStatus, type PoolLog, type UpstreamNode } from './pool.ts';
export { createTransport, createUpstream, upstreamNodes, type Engine } from './factory.ts';
export { classifyUpstreamError, type Transport } from './transport.ts';
export { ServiceAccount } from './service-account.ts';
export { strippedRequestHeaders, droppedResponseHeaders } from './headers.ts';
export { tapSmallAnswer } from './answer.ts';
