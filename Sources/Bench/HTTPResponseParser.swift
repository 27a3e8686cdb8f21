/// The status line and headers of an HTTP/1.x response.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var reason: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// In arrival order; names as sent.
    public var headers: [(name: String, value: String)]

    public init(status: Int, reason: String = "", minorVersion: Int = 1, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.reason = reason
        self.minorVersion = minorVersion
        self.headers = headers
    }

    /// The first header of that name (case-insensitive), trimmed.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// Whether the server lets the connection be reused after this response.
    public var keepAlive: Bool {
        let connection = header("Connection")?.lowercased() ?? ""
        if connection.contains("close") { return false }
        return minorVersion >= 1 || connection.contains("keep-alive")
    }

    public static func == (lhs: HTTPResponseHead, rhs: HTTPResponseHead) -> Bool {
        lhs.status == rhs.status && lhs.reason == rhs.reason && lhs.minorVersion == rhs.minorVersion
            && lhs.headers.map { "\($0.name):\($0.value)" } == rhs.headers.map { "\($0.name):\($0.value)" }
    }
}

/// Incremental parser of one HTTP/1.1 response: feed it bytes as they arrive, in pieces of any size;
/// it reports the head, body bytes (de-chunked) and the end. Handles `Content-Length`,
/// `Transfer-Encoding: chunked` (trailers skipped) and bodies delimited by the connection closing;
/// skips interim 1xx responses. No sockets here, so it is tested byte by byte.
public struct HTTPResponseParser: Sendable {
    public enum Event: Sendable, Equatable {
        case head(HTTPResponseHead)
        case body([UInt8])
        case end
    }

    enum State: Sendable, Equatable {
        case statusLine
        case headers
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    /// Longest status line, header line or chunk-size line; and the whole head.
    public static let maxLineBytes = 16 << 10
    public static let maxHeadBytes = 64 << 10

    private(set) var state: State = .statusLine
    private var line: [UInt8] = []
    private var headBytes = 0
    private var head = HTTPResponseHead(status: 0)
    /// True for HEAD requests (no body whatever the headers say).
    public var noBodyExpected = false

    public init() {}

    public var isComplete: Bool { state == .done }
    /// True once the head has been reported.
    public var hasHead: Bool {
        switch state {
        case .statusLine, .headers: return false
        default: return true
        }
    }

    /// Consumes `bytes`; returns what they completed. Bytes after the end of the response are a
    /// protocol error (we never pipeline).
    public mutating func feed(_ bytes: ArraySlice<UInt8>) throws(HTTPClientError) -> [Event] {
        var events: [Event] = []
        var i = bytes.startIndex
        let end = bytes.endIndex
        while i < end {
            switch state {
            case .statusLine, .headers, .chunkSize, .trailers:
                // Collect one line (up to LF).
                guard let lf = bytes[i..<end].firstIndex(of: 0x0A) else {
                    try appendLine(bytes[i..<end])
                    i = end
                    continue
                }
                try appendLine(bytes[i..<lf])
                i = lf + 1
                if line.last == 0x0D { line.removeLast() }
                let text = line
                line.removeAll(keepingCapacity: true)
                try handleLine(text, events: &events)
            case .fixedBody(let remaining):
                let n = min(remaining, end - i)
                events.append(.body(Array(bytes[i..<(i + n)])))
                i += n
                if remaining - n == 0 {
                    state = .done
                    events.append(.end)
                } else {
                    state = .fixedBody(remaining: remaining - n)
                }
            case .chunkData(let remaining):
                let n = min(remaining, end - i)
                events.append(.body(Array(bytes[i..<(i + n)])))
                i += n
                state = remaining - n == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            case .chunkDataEnd:
                // Expect CRLF (tolerate a bare LF).
                if bytes[i] == 0x0D { i += 1; continue }
                guard bytes[i] == 0x0A else { throw .protocolViolation("missing CRLF after chunk data") }
                i += 1
                state = .chunkSize
            case .untilClose:
                events.append(.body(Array(bytes[i..<end])))
                i = end
            case .done:
                throw .protocolViolation("\(end - i) unexpected bytes after the end of the response")
            }
        }
        return events
    }

    /// The connection reached end-of-file. Completes a close-delimited body; anywhere else the
    /// response was cut short.
    public mutating func finish() throws(HTTPClientError) -> [Event] {
        switch state {
        case .untilClose:
            state = .done
            return [.end]
        case .done:
            return []
        case .statusLine where line.isEmpty && headBytes == 0:
            throw .connectionClosed("the server closed the connection before responding")
        default:
            throw .connectionClosed("the server closed the connection in the middle of the response")
        }
    }

    // MARK: - Lines

    private mutating func appendLine(_ piece: ArraySlice<UInt8>) throws(HTTPClientError) {
        line.append(contentsOf: piece)
        if state == .statusLine || state == .headers { headBytes += piece.count + 1 }
        if line.count > Self.maxLineBytes { throw .protocolViolation("a response line is longer than \(Self.maxLineBytes) bytes") }
        if headBytes > Self.maxHeadBytes { throw .protocolViolation("the response head is longer than \(Self.maxHeadBytes) bytes") }
    }

    private mutating func handleLine(_ text: [UInt8], events: inout [Event]) throws(HTTPClientError) {
        switch state {
        case .statusLine:
            head = try Self.parseStatusLine(text)
            state = .headers
        case .headers:
            if text.isEmpty {
                try finishHead(events: &events)
                return
            }
            guard let colon = text.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
                throw .protocolViolation("malformed header line '\(String(decoding: text.prefix(80), as: UTF8.self))'")
            }
            let name = String(decoding: text[..<colon], as: UTF8.self)
            let value = String(decoding: text[(colon + 1)...], as: UTF8.self).trimmingSpaces()
            head.headers.append((name, value))
        case .chunkSize:
            let digits = text.prefix { $0 != UInt8(ascii: ";") }  // chunk extensions ignored
            let hex = String(decoding: digits, as: UTF8.self).trimmingSpaces()
            guard !hex.isEmpty, hex.count <= 15, let size = Int(hex, radix: 16) else {
                throw .protocolViolation("bad chunk size '\(String(decoding: text.prefix(40), as: UTF8.self))'")
            }
            state = size == 0 ? .trailers : .chunkData(remaining: size)
        case .trailers:
            if text.isEmpty {
                state = .done
                events.append(.end)
            }
        default:
            break
        }
    }

    private mutating func finishHead(events: inout [Event]) throws(HTTPClientError) {
        if (100..<200).contains(head.status) && head.status != 101 {
            // Interim response (100 Continue, 103 Early Hints): the real one follows.
            state = .statusLine
            headBytes = 0
            return
        }
        events.append(.head(head))
        let transferEncoding = head.header("Transfer-Encoding")?.lowercased()
        if noBodyExpected || head.status == 204 || head.status == 304 {
            state = .done
            events.append(.end)
        } else if let transferEncoding, transferEncoding.contains("chunked") {
            state = .chunkSize
        } else if let lengthText = head.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0 else {
                throw .protocolViolation("bad Content-Length '\(lengthText)'")
            }
            if length == 0 {
                state = .done
                events.append(.end)
            } else {
                state = .fixedBody(remaining: length)
            }
        } else {
            state = .untilClose
        }
    }

    static func parseStatusLine(_ text: [UInt8]) throws(HTTPClientError) -> HTTPResponseHead {
        let line = String(decoding: text, as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[0].count == 8,
              let minor = Int(parts[0].suffix(1)),
              parts[1].count == 3, let status = Int(parts[1]), status >= 100
        else {
            throw .protocolViolation("malformed status line '\(String(line.prefix(80)))'")
        }
        return HTTPResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", minorVersion: minor)
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(scalars[first...last])
    }
}
