export { Upstream, classifyUpstreamError, type UpstreamOptions, type ForwardRequest, type ProxyLog } from './upstream.ts';
export { strippedRequestHeaders } from './headers.ts';
export { tapSmallAnswer } from './answer.ts';
