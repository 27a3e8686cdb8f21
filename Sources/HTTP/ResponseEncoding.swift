// Serialization of response heads, chunked framing, error bodies and Server-Sent Events.

/// How a response body is delimited on the wire (RFC 9112 §6).
enum BodyFraming: Equatable {
    /// `Content-Length: n` followed by n bytes (possibly suppressed for HEAD).
    case length(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// No length; the body ends when the connection closes (HTTP/1.0 streaming).
    case untilClose
    /// No body at all (1xx, 204, 304).
    case none
}

enum ResponseEncoding {
    /// Header names the connection layer owns; a handler's values for these are dropped.
    static let reserved: Set<String> = ["content-length", "transfer-encoding", "connection", "keep-alive"]

    /// Serializes a status line and header block.
    /// - `close`: adds `Connection: close`; `keepAlive10`: adds `Connection: keep-alive` for an HTTP/1.0 peer.
    static func head(
        status: Int, headers: [(String, String)], framing: BodyFraming, close: Bool, keepAlive10: Bool = false
    ) -> [UInt8] {
        var out = "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n"
        for (name, value) in headers {
            // Drop what we set ourselves and anything that could split the response.
            guard !reserved.contains(name.lowercased()), isToken(name), isFieldValue(value) else { continue }
            out += "\(name): \(value)\r\n"
        }
        switch framing {
        case .length(let n): out += "Content-Length: \(n)\r\n"
        case .chunked: out += "Transfer-Encoding: chunked\r\n"
        case .untilClose, .none: break
        }
        if close {
            out += "Connection: close\r\n"
        } else if keepAlive10 {
            out += "Connection: keep-alive\r\n"
        }
        out += "\r\n"
        return Array(out.utf8)
    }

    /// One chunk of a chunked body; empty input yields nothing (an empty chunk would end the body).
    static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty else { return [] }
        var out = Array(String(bytes.count, radix: 16).utf8)
        out += [13, 10]
        out += bytes
        out += [13, 10]
        return out
    }

    /// The last-chunk and empty trailer section.
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Whether a status forbids a body (RFC 9110 §15: 1xx, 204, 304).
    static func statusHasNoBody(_ status: Int) -> Bool {
        (100..<200).contains(status) || status == 204 || status == 304
    }

    /// A JSON error body in the OpenAI envelope shape: `{"error":{"message":…,"type":…,"code":…}}`.
    static func errorBody(status: Int, message: String) -> [UInt8] {
        let type = status >= 500 ? "server_error" : "invalid_request_error"
        return Array("{\"error\":{\"message\":\(jsonString(message)),\"type\":\"\(type)\",\"code\":\(status)}}".utf8)
    }

    /// A complete error response (JSON body, `Connection: close` when `close`).
    static func errorResponse(status: Int, message: String, close: Bool, extraHeaders: [(String, String)] = []) -> [UInt8] {
        let body = errorBody(status: status, message: message)
        return head(
            status: status, headers: [("Content-Type", "application/json")] + extraHeaders,
            framing: .length(body.count), close: close) + body
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    static func isFieldValue(_ s: String) -> Bool {
        s.utf8.allSatisfy { $0 != 13 && $0 != 10 && $0 != 0 }
    }
}

/// One Server-Sent Event (WHATWG HTML §9.2). `data` may contain newlines; each line becomes a `data:` field.
public struct ServerSentEvent: Sendable, Equatable {
    public var event: String?
    public var data: String
    public var id: String?

    public init(data: String, event: String? = nil, id: String? = nil) {
        self.data = data
        self.event = event
        self.id = id
    }

    /// The wire form, ending with the blank line that dispatches the event. Each line of `data` (split at LF, CR
    /// or CRLF, as the receiver will split it) becomes a `data:` field; line breaks in `event` and `id` are dropped.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        if let event { out += Array("event: ".utf8) + Self.singleLine(event) + [10] }
        if let id { out += Array("id: ".utf8) + Self.singleLine(id) + [10] }
        for line in Self.lines(data) { out += Array("data: ".utf8) + line + [10] }
        out.append(10)
        return out
    }

    private static func singleLine(_ s: String) -> [UInt8] {
        s.utf8.filter { $0 != 10 && $0 != 13 && $0 != 0 }
    }

    private static func lines(_ s: String) -> [ArraySlice<UInt8>] {
        let bytes = Array(s.utf8)
        var out: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 10 || bytes[i] == 13 {
                out.append(bytes[start..<i])
                if bytes[i] == 13 && i + 1 < bytes.count && bytes[i + 1] == 10 { i += 1 }
                start = i + 1
            }
            i += 1
        }
        out.append(bytes[start...])
        return out
    }
}
