// Public value types of the HTTP layer: requests, configuration, errors.

/// One parsed HTTP/1.x request, delivered to an ``HTTPHandler`` once its whole body has arrived.
public struct HTTPRequest: Sendable {
    /// Method as sent, e.g. `"GET"`, `"POST"`.
    public let method: String
    /// Path part of the request target as sent (not percent-decoded), without the query, e.g. `"/v1/chat/completions"`.
    public let path: String
    /// Query part of the request target without the `?`, or nil when there was none.
    public let query: String?
    /// Protocol version as (major, minor), e.g. (1, 1).
    public let version: (major: Int, minor: Int)
    /// Header fields in arrival order; names keep their original case. Trailer fields of a chunked body are appended.
    public let headers: [(name: String, value: String)]
    /// The decoded body (chunked framing removed).
    public let body: [UInt8]
    /// The peer's address as `"host:port"` (IPv6 as `"[addr]:port"`), or nil when unknown.
    public internal(set) var remoteAddress: String?

    public init(
        method: String, path: String, query: String? = nil, version: (major: Int, minor: Int) = (1, 1),
        headers: [(name: String, value: String)] = [], body: [UInt8] = [], remoteAddress: String? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The value of the first header called `name` (compared case-insensitively), or nil.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// Limits and addresses for an ``HTTPServer``; every default is resolved here.
public struct HTTPServerConfiguration: Sendable {
    /// IPv4 or IPv6 literal to listen on.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 asks the kernel for an ephemeral port (``HTTPServer/start()`` returns the bound one).
    public var port: Int = 0
    /// Maximum bytes of request line plus header fields (and trailers) per request; past it: 431 and close.
    public var maxHeaderBytes: Int = 16 * 1024
    /// Maximum decoded body bytes per request; past it: 413 and close (before reading the body when Content-Length says so).
    public var maxBodyBytes: Int = 8 * 1024 * 1024
    /// A request must finish its head within this time of its first byte; otherwise 408 and close (slow-loris).
    public var headerTimeout: Duration = .seconds(10)
    /// A request body must make progress at least this often.
    public var bodyTimeout: Duration = .seconds(30)
    /// A connection with no request in flight is closed after this long (also applies to a fresh connection).
    public var idleTimeout: Duration = .seconds(60)
    /// After a graceful close the server reads and discards for at most this long so the peer sees the last response.
    public var lingerTimeout: Duration = .seconds(2)
    /// Open client connections allowed; one more gets 503 with `Retry-After` and is closed.
    public var maxConnections: Int = 256
    /// Value of `Retry-After` (seconds) sent with the 503 above.
    public var retryAfterSeconds: Int = 1
    /// Requests parsed but not yet answered per connection; past it the server stops reading the socket until one finishes.
    public var maxPipelinedRequests: Int = 16
    /// Bytes handed to the socket but not yet sent; past it the peer is not reading and the connection is closed.
    public var maxPendingWriteBytes: Int = 64 * 1024 * 1024
    /// Listen backlog passed to `uv_listen`.
    public var backlog: Int = 128

    public init(host: String = "127.0.0.1", port: Int = 0) {
        self.host = host
        self.port = port
    }
}

/// A snapshot of the server's counters (``HTTPServer/metrics``). Counts are totals since start.
public struct HTTPServerMetrics: Sendable, Equatable {
    /// Client connections open now (not counting ones being turned away with 503).
    public var openConnections = 0
    /// Connections accepted and served since start.
    public var acceptedConnections = 0
    /// Connections turned away with 503 because ``HTTPServerConfiguration/maxConnections`` were open.
    public var rejectedConnections = 0
    /// Requests handed to the handler.
    public var requests = 0
    /// Response heads sent (or queued), by status code; includes the server's own 400/408/413/431/500/503.
    public var responsesByStatus: [Int: Int] = [:]
    /// Responses whose connection closed before they finished (their responders were cancelled).
    public var cancelledResponses = 0
    /// Bytes read from and handed to the sockets.
    public var bytesReceived = 0
    public var bytesSent = 0

    public init() {}

    /// Responses with a status in `range`, e.g. `500..<600`.
    public func responses(in range: Range<Int>) -> Int {
        responsesByStatus.reduce(0) { range.contains($1.key) ? $0 + $1.value : $0 }
    }
}

/// Errors thrown by the HTTP layer's setup calls and by ``HTTPClient``.
public enum HTTPError: Error, Equatable, CustomStringConvertible {
    /// A libuv call failed; `call` names it, `message` is `uv_strerror`.
    case libuv(call: String, code: Int32, message: String)
    /// The host string is not an IPv4/IPv6 literal.
    case invalidAddress(String)
    /// ``HTTPServer/start()`` was called twice.
    case alreadyStarted
    /// Client side: connect/read/write failed with `errno`.
    case socket(call: String, errno: Int32)
    /// Client side: the peer sent something that is not a valid HTTP/1.1 response.
    case malformedResponse(String)
    /// Client side: no data within the timeout.
    case timeout
    /// Client side: the peer closed the connection before a complete response or event.
    case connectionClosed

    public var description: String {
        switch self {
        case .libuv(let call, let code, let message): return "\(call) failed: \(message) (\(code))"
        case .invalidAddress(let host): return "'\(host)' is not an IPv4 or IPv6 address (hint: use 127.0.0.1, 0.0.0.0 or ::)"
        case .alreadyStarted: return "server already started"
        case .socket(let call, let err): return "\(call) failed with errno \(err)"
        case .malformedResponse(let why): return "malformed HTTP response: \(why)"
        case .timeout: return "timed out waiting for the server"
        case .connectionClosed: return "connection closed by peer"
        }
    }
}

/// Why a request could not be parsed; each maps to one status code sent before the connection is closed.
public enum HTTPParseError: Error, Equatable, CustomStringConvertible {
    /// Request line and headers exceeded the configured limit.
    case headersTooLarge(limit: Int)
    /// Content-Length or the decoded chunked body exceeded the configured limit.
    case bodyTooLarge(limit: Int)
    /// http_parser rejected the bytes; `name` is its errno name (e.g. `HPE_INVALID_METHOD`).
    case malformed(name: String, description: String)
    /// A request line whose version is not HTTP/1.x (no version at all is HTTP/0.9 to http_parser).
    case unsupportedVersion(major: Int, minor: Int)

    /// The status code this error is answered with.
    public var status: Int {
        switch self {
        case .headersTooLarge: return 431
        case .bodyTooLarge: return 413
        case .malformed: return 400
        case .unsupportedVersion: return 505
        }
    }

    public var description: String {
        switch self {
        case .headersTooLarge(let limit): return "request headers exceed \(limit) bytes"
        case .bodyTooLarge(let limit): return "request body exceeds \(limit) bytes"
        case .malformed(let name, let description): return "malformed request: \(description) (\(name))"
        case .unsupportedVersion(let major, let minor): return "HTTP/\(major).\(minor) is not supported; use HTTP/1.1"
        }
    }
}

/// Reason phrases for the status codes this layer and the API layer use.
func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: return "Continue"
    case 200: return "OK"
    case 201: return "Created"
    case 202: return "Accepted"
    case 204: return "No Content"
    case 304: return "Not Modified"
    case 400: return "Bad Request"
    case 401: return "Unauthorized"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 408: return "Request Timeout"
    case 409: return "Conflict"
    case 413: return "Content Too Large"
    case 415: return "Unsupported Media Type"
    case 422: return "Unprocessable Content"
    case 429: return "Too Many Requests"
    case 431: return "Request Header Fields Too Large"
    case 500: return "Internal Server Error"
    case 501: return "Not Implemented"
    case 503: return "Service Unavailable"
    case 505: return "HTTP Version Not Supported"
    default: return "Status \(status)"
    }
}
