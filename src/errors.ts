// Typed gateway errors: a public code + message for clients, a detail for logs only.
// They are mapped to HTTP in exactly one place: the error handler in src/app.ts.

export abstract class GatewayError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  /** Never sent to clients; may be logged. Must not contain secrets. */
  readonly detail: string | undefined;
  /** Extra response headers (e.g. Retry-After, WWW-Authenticate). */
  headers: Record<string, string> = {};

  constructor(message: string, detail?: string) {
    // No stack: these are answers (a wrong password, a bad token), thrown on every hostile request; the handler logs
    // code and detail, never a stack, and capturing one cost ~15 us, more than a refused refresh's own work.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = new.target.name;
    this.detail = detail;
  }
}

export class BadRequest extends GatewayError {
  readonly status = 400;
  readonly code: string;
  constructor(message: string, code = 'bad_request', detail?: string) {
    super(message, detail);
    this.code = code;
  }
}

export class InvalidCredentials extends GatewayError {
  readonly status = 401;
  readonly code = 'invalid_credentials';
  /** `message` replaces the generic sentence where the directory's own refusal is public (Azure AD's AADSTS code). */
  constructor(detail?: string, message = 'The username or password is incorrect.') {
    super(message, detail);
  }
}

export class InvalidToken extends GatewayError {
  readonly status = 401;
  readonly code: string;
  constructor(message = 'The access token is missing, invalid or expired.', code = 'invalid_token', detail?: string) {
    super(message, detail);
    this.code = code;
    this.headers['WWW-Authenticate'] = 'Bearer';
  }
}

export class InvalidRefreshToken extends GatewayError {
  readonly status = 401;
  readonly code = 'invalid_refresh_token';
  constructor(detail?: string) {
    super('The refresh token is invalid, expired or revoked.', detail);
  }
}

export class Forbidden extends GatewayError {
  readonly status = 403;
  readonly code: string;
  constructor(message: string, code = 'forbidden', detail?: string) {
    super(message, detail);
    this.code = code;
  }
}

export class RouteNotFound extends GatewayError {
  readonly status = 404;
  readonly code = 'route_not_found';
  constructor(detail?: string) {
    super('No such route.', detail);
  }
}

/** A named thing (refresh token, family) that the request is about does not exist. */
export class NotFound extends GatewayError {
  readonly status = 404;
  readonly code: string;
  constructor(message: string, code = 'not_found', detail?: string) {
    super(message, detail);
    this.code = code;
  }
}

export class MethodNotAllowed extends GatewayError {
  readonly status = 405;
  readonly code = 'method_not_allowed';
  constructor(allow: string[]) {
    super('This method is not allowed on this route.');
    this.headers['Allow'] = allow.join(', ');
  }
}

export class PayloadTooLarge extends GatewayError {
  readonly status = 413;
  readonly code = 'payload_too_large';
  constructor(limit: number) {
    super(`The request body exceeds the limit of ${limit} bytes.`);
  }
}

export class LengthRequired extends GatewayError {
  readonly status = 411;
  readonly code = 'length_required';
  constructor(method: string) {
    // http-proxy rewrites a DELETE or OPTIONS without Content-Length to "Content-Length: 0" and still sends the body:
    // the node would read that body as a second request that was never authorized.
    super(`A ${method} request with a body must declare its Content-Length (no Transfer-Encoding).`);
  }
}

export class UnsupportedMediaType extends GatewayError {
  readonly status = 415;
  readonly code = 'unsupported_media_type';
  constructor() {
    super('The request body must be JSON (Content-Type: application/json).');
  }
}

export class TooManyRequests extends GatewayError {
  readonly status = 429;
  readonly code = 'too_many_requests';
  constructor(retryAfterSeconds: number, detail?: string) {
    super('Too many attempts; try again later.', detail);
    this.headers['Retry-After'] = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  }
}

export class StoreUnavailable extends GatewayError {
  readonly status = 503;
  readonly code = 'store_unavailable';
  constructor(detail?: string) {
    super('The token store is unavailable; try again shortly.', detail);
  }
}

export class RevocationUnavailable extends GatewayError {
  readonly status = 503;
  readonly code = 'revocation_unavailable';
  constructor(detail?: string) {
    super('Token revocation state cannot be confirmed; try again shortly.', detail);
  }
}

export class DirectoryUnavailable extends GatewayError {
  readonly status = 503;
  readonly code = 'directory_unavailable';
  constructor(detail?: string) {
    super('The identity directory is unavailable; try again shortly.', detail);
  }
}

export class UpstreamUnavailable extends GatewayError {
  readonly status = 503;
  readonly code = 'upstream_unavailable';
  constructor(detail?: string) {
    super('No operationalization node is available.', detail);
  }
}

export class BadGateway extends GatewayError {
  readonly status = 502;
  readonly code = 'bad_gateway';
  /** `message` replaces the generic sentence when the cause is known (TLS, service account). */
  constructor(detail?: string, message = 'The operationalization node gave an invalid answer.') {
    super(message, detail);
  }
}

export class GatewayTimeout extends GatewayError {
  readonly status = 504;
  readonly code = 'upstream_timeout';
  constructor(detail?: string) {
    super('The operationalization node did not answer in time.', detail);
  }
}

/** JSON error body shape shared by every error answer (DESIGN section 2). */
export interface ErrorBody {
  error: string;
  message: string;
  requestId: string;
}
