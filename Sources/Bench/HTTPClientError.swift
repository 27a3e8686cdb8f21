/// Why an HTTP exchange failed, as the client sees it. Each maps to one error kind of the report.
public enum HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The TCP connection could not be made (refused, unreachable, name not resolved).
    case connect(String)
    /// The deadline passed; the associated text names the phase (connect, send, response).
    case timeout(String)
    /// The peer closed or reset the connection before the response was complete.
    case connectionClosed(String)
    /// A socket call failed (errno text).
    case io(String)
    /// The response is not valid HTTP/1.x.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connect(let s): return "connect: \(s)"
        case .timeout(let s): return "timeout: \(s)"
        case .connectionClosed(let s): return "connection closed: \(s)"
        case .io(let s): return "I/O error: \(s)"
        case .protocolViolation(let s): return "protocol: \(s)"
        }
    }
}
