// A minimal blocking HTTP/1.1 client over one TCP connection: for tests, the load generator and
// end-to-end checks. POSIX sockets only (no libuv): each client is used by one thread at a time.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A response status line and header fields.
public struct HTTPResponseHead: Sendable {
    public var status: Int
    public var reason: String
    /// `(1, 1)` for `HTTP/1.1`.
    public var version: (major: Int, minor: Int)
    public var headers: [(name: String, value: String)]

    /// The value of the first header called `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// True when the server will close the connection after this response.
    public var closesConnection: Bool {
        let connection = header("Connection")?.lowercased() ?? ""
        if connection.contains("close") { return true }
        return version.major == 1 && version.minor == 0 && !connection.contains("keep-alive")
    }
}

/// A whole response.
public struct HTTPResponse: Sendable {
    public var head: HTTPResponseHead
    public var body: [UInt8]

    public var status: Int { head.status }
    public func header(_ name: String) -> String? { head.header(name) }
    /// The body as UTF-8 (invalid sequences repaired).
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// One blocking HTTP/1.1 connection.
///
/// ```swift
/// let client = try HTTPClient(port: port)
/// let r = try client.request(method: "GET", path: "/health")             // whole response
/// try client.sendRequest(method: "POST", path: "/v1/chat/completions", body: json)
/// let head = try client.readResponseHead()                                 // then stream:
/// while let event = try client.readEvent() { … }                           // Server-Sent Events
/// ```
/// Requests may be pipelined: send several, then read the responses in order. Every wait for data gives up
/// after ``timeout`` with ``HTTPError/timeout``. Not thread-safe.
public final class HTTPClient {
    /// Longest a single read or write may wait.
    public var timeout: Duration
    /// Largest status line plus header block accepted (also bounds a chunk-size line and trailers).
    public var maxHeaderBytes = 64 * 1024
    /// Largest body ``readBody()`` accumulates.
    public var maxBodyBytes = 256 * 1024 * 1024

    private var fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0  // first unread byte of `buffer`
    private var eof = false
    /// Methods of the requests sent whose final response has not been read (HEAD responses have no body).
    private var methods: [String] = []
    private var body = BodyState.none
    private var eventBuffer: [UInt8] = []

    private enum BodyState: Equatable {
        case none
        case length(remaining: Int)
        /// `remaining` bytes of the current chunk are unread; nil: a chunk-size line comes next.
        case chunked(remaining: Int?)
        case untilClose
    }

    /// Connects to `host` (a name or an IPv4/IPv6 literal) on `port`.
    public init(host: String = "127.0.0.1", port: Int, timeout: Duration = .seconds(30)) throws(HTTPError) {
        self.timeout = timeout
        fd = try Self.connect(host: host, port: port, timeout: timeout)
    }

    deinit {
        if fd >= 0 { closeSocket(fd) }
    }

    /// Closes the socket; later calls fail with ``HTTPError/connectionClosed``.
    public func close() {
        if fd >= 0 { closeSocket(fd) }
        fd = -1
    }

    /// Shuts down the sending side (the server sees EOF); responses can still be read.
    public func shutdownWrite() {
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Aborts the connection with a TCP reset instead of an orderly close.
    public func reset() {
        guard fd >= 0 else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    // MARK: - Sending

    /// Writes raw bytes (for hostile tests). Pair with ``expectResponse(method:)`` if a response is to be read.
    public func write(_ bytes: [UInt8]) throws(HTTPError) {
        guard fd >= 0 else { throw .connectionClosed }
        var sent = 0
        while sent < bytes.count {
            try wait(for: Int16(POLLOUT))
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EPIPE || errno == ECONNRESET { throw .connectionClosed }
                throw .socket(call: "send", errno: errno)
            }
            sent += n
        }
    }

    /// Writes a string as UTF-8.
    public func write(_ text: String) throws(HTTPError) {
        try write(Array(text.utf8))
    }

    /// Records that a response to a `method` request is due (for raw requests sent with ``write(_:)-([UInt8])``).
    public func expectResponse(method: String = "GET") {
        methods.append(method)
    }

    /// Sends one request. Adds `Host` and, for a body, `Content-Length`, unless `headers` has them
    /// (a `Transfer-Encoding` header means the body is already framed and is sent as is).
    public func sendRequest(
        method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws(HTTPError) {
        var head = "\(method) \(path) HTTP/1.1\r\n"
        let names = Set(headers.map { $0.0.lowercased() })
        if !names.contains("host") { head += "Host: localhost\r\n" }
        if !names.contains("content-length") && !names.contains("transfer-encoding")
            && (!body.isEmpty || method == "POST" || method == "PUT")
        {
            head += "Content-Length: \(body.count)\r\n"
        }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        methods.append(method)
        try write(Array(head.utf8) + body)
    }

    /// Sends a request and reads its whole response (interim 1xx responses skipped).
    public func request(
        method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) throws(HTTPError) -> HTTPResponse {
        try sendRequest(method: method, path: path, headers: headers, body: body)
        return try readResponse()
    }

    /// Convenience: a UTF-8 body.
    public func request(
        method: String, path: String, headers: [(String, String)] = [], body: String
    ) throws(HTTPError) -> HTTPResponse {
        try request(method: method, path: path, headers: headers, body: Array(body.utf8))
    }

    // MARK: - Receiving

    /// Reads the next response head, interim (1xx) ones included; afterwards read the body of a final response
    /// with ``readBodyPart()``, ``readBody()`` or ``readEvent()``. Reading a new head skips any unread body.
    public func readResponseHead() throws(HTTPError) -> HTTPResponseHead {
        while body != .none {
            _ = try readBodyPart()
        }
        var total = 0
        var statusLine: String
        repeat {
            statusLine = try readLine(budget: &total)
        } while statusLine.isEmpty  // tolerate stray CRLF between messages
        var head = try parseStatusLine(statusLine)
        while true {
            let line = try readLine(budget: &total)
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else {
                throw .malformedResponse("header line without ':': \(line.prefix(80))")
            }
            head.headers.append((String(line[..<colon]), String(String(line[line.index(after: colon)...]).trimmingSpaces)))
        }
        if (100..<200).contains(head.status) { return head }
        let method = methods.isEmpty ? "GET" : methods.removeFirst()
        if method == "HEAD" || head.status == 204 || head.status == 304 {
            body = .none
        } else if let te = head.header("Transfer-Encoding"), te.lowercased().contains("chunked") {
            body = .chunked(remaining: nil)
        } else if let cl = head.header("Content-Length") {
            guard let n = Int(cl.trimmingSpaces), n >= 0 else { throw .malformedResponse("Content-Length '\(cl)'") }
            body = n == 0 ? .none : .length(remaining: n)
        } else {
            body = .untilClose
        }
        eventBuffer = []
        return head
    }

    /// The next piece of the current response body as it arrives (a chunk or part of one); nil at its end.
    public func readBodyPart() throws(HTTPError) -> [UInt8]? {
        while true {
            switch body {
            case .none:
                return nil
            case .length(let remaining):
                let part = try take(upTo: remaining)
                body = remaining - part.count == 0 ? .none : .length(remaining: remaining - part.count)
                return part
            case .chunked(nil):
                var total = 0
                let line = try readLine(budget: &total)
                let sizeText = line.split(separator: ";", maxSplits: 1).first.map { String($0).trimmingSpaces } ?? ""
                guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16) else {
                    throw .malformedResponse("chunk size line '\(line.prefix(40))'")
                }
                if size == 0 {
                    while try !readLine(budget: &total).isEmpty {}  // trailers
                    body = .none
                    return nil
                }
                body = .chunked(remaining: size)
            case .chunked(let remaining?):
                if remaining == 0 {
                    var total = 0
                    guard try readLine(budget: &total).isEmpty else { throw .malformedResponse("chunk not followed by CRLF") }
                    body = .chunked(remaining: nil)
                    continue
                }
                let part = try take(upTo: remaining)
                body = .chunked(remaining: remaining - part.count)
                return part
            case .untilClose:
                if available == 0 && !eof { try fill() }
                if available == 0 {
                    body = .none
                    return nil
                }
                return try take(upTo: available)
            }
        }
    }

    /// The rest of the current response body.
    public func readBody() throws(HTTPError) -> [UInt8] {
        var out: [UInt8] = []
        while let part = try readBodyPart() {
            out += part
            if out.count > maxBodyBytes { throw .malformedResponse("body larger than \(maxBodyBytes) bytes") }
        }
        return out
    }

    /// Reads the next final response (skipping 1xx) and its whole body.
    public func readResponse() throws(HTTPError) -> HTTPResponse {
        var head = try readResponseHead()
        while (100..<200).contains(head.status) { head = try readResponseHead() }
        return HTTPResponse(head: head, body: try readBody())
    }

    /// The next Server-Sent Event of the current (streaming) response body, or nil when the body ends.
    /// Comment lines are skipped; an event is dispatched at a blank line (WHATWG HTML §9.2.6).
    public func readEvent() throws(HTTPError) -> ServerSentEvent? {
        while true {
            if let event = takeEvent() { return event }
            guard let part = try readBodyPart() else {
                // The body ended: a last CR was a line end after all. A final event without its blank line is
                // dropped, as browsers do.
                if eventBuffer.last == 13 {
                    eventBuffer.append(10)
                    if let event = takeEvent() { return event }
                }
                eventBuffer = []
                return nil
            }
            eventBuffer += part
            if eventBuffer.count > maxBodyBytes { throw .malformedResponse("event larger than \(maxBodyBytes) bytes") }
        }
    }

    /// True when the server closed the connection (EOF) within the timeout; false if data arrived instead.
    public func waitForClose() throws(HTTPError) -> Bool {
        if available > 0 { return false }
        if eof { return true }
        do {
            try fill()
        } catch .connectionClosed {
            return true
        }
        return available == 0 && eof
    }

    // MARK: - Internals

    private var available: Int { buffer.count - start }

    /// Parses one complete event from `eventBuffer`, if a blank line has arrived. Lines end with LF, CR or CRLF.
    private func takeEvent() -> ServerSentEvent? {
        while true {
            var lines: [String] = []
            var lineStart = 0
            var end: Int?
            var i = 0
            let count = eventBuffer.count
            while i < count {
                let b = eventBuffer[i]
                guard b == 10 || b == 13 else {
                    i += 1
                    continue
                }
                if b == 13 && i + 1 == count { break }  // CR last: an LF may follow in the next part
                let line = eventBuffer[lineStart..<i]
                i += (b == 13 && eventBuffer[i + 1] == 10) ? 2 : 1
                lineStart = i
                if line.isEmpty {
                    end = i
                    break
                }
                lines.append(String(decoding: line, as: UTF8.self))
            }
            guard let end else { return nil }
            eventBuffer.removeFirst(end)
            var event = ServerSentEvent(data: "")
            var data: [Substring] = []
            var sawField = false
            for line in lines where !line.hasPrefix(":") {
                let name: Substring
                var value: Substring
                if let colon = line.firstIndex(of: ":") {
                    name = line[..<colon]
                    value = line[line.index(after: colon)...]
                    if value.hasPrefix(" ") { value = value.dropFirst() }
                } else {
                    name = line[...]
                    value = ""
                }
                switch name {
                case "data": data.append(value); sawField = true
                case "event": event.event = String(value); sawField = true
                case "id": event.id = String(value); sawField = true
                default: break
                }
            }
            if !sawField { continue }  // comments only
            event.data = data.joined(separator: "\n")
            return event
        }
    }

    /// Up to `limit` bytes, waiting for at least one.
    private func take(upTo limit: Int) throws(HTTPError) -> [UInt8] {
        if available == 0 { try fill() }
        if available == 0 { throw .connectionClosed }
        let n = min(limit, available)
        let out = Array(buffer[start..<(start + n)])
        consume(n)
        return out
    }

    private func consume(_ n: Int) {
        start += n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    /// One line without its CRLF (a bare LF is accepted); `budget` counts bytes against ``maxHeaderBytes``.
    private func readLine(budget: inout Int) throws(HTTPError) -> String {
        var scanned = start
        while true {
            if let lf = buffer[scanned...].firstIndex(of: 10) {
                var endOfLine = lf
                if endOfLine > start && buffer[endOfLine - 1] == 13 { endOfLine -= 1 }
                let line = String(decoding: buffer[start..<endOfLine], as: UTF8.self)
                budget += lf + 1 - start
                consume(lf + 1 - start)
                if budget > maxHeaderBytes { throw .malformedResponse("response head larger than \(maxHeaderBytes) bytes") }
                return line
            }
            scanned = buffer.count
            if budget + available > maxHeaderBytes {
                throw .malformedResponse("response head larger than \(maxHeaderBytes) bytes")
            }
            try fill()
            if eof && buffer.count == scanned { throw .connectionClosed }
        }
    }

    private func parseStatusLine(_ line: String) throws(HTTPError) -> HTTPResponseHead {
        // HTTP/1.1 200 OK
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[0].count == 8,
            let major = parts[0].dropFirst(5).first?.wholeNumberValue,
            let minor = parts[0].last?.wholeNumberValue,
            parts[1].count == 3, let status = Int(parts[1])
        else { throw .malformedResponse("status line '\(line.prefix(80))'") }
        return HTTPResponseHead(
            status: status, reason: parts.count > 2 ? String(parts[2]) : "", version: (major, minor), headers: [])
    }

    /// Reads whatever is available (waiting up to ``timeout``); sets `eof` at end of stream.
    private func fill() throws(HTTPError) {
        guard fd >= 0 else { throw .connectionClosed }
        if eof { return }
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        try wait(for: Int16(POLLIN))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                buffer += chunk[..<n]
                return
            }
            if n == 0 {
                eof = true
                return
            }
            if errno == EINTR { continue }
            if errno == ECONNRESET {
                eof = true
                throw .connectionClosed
            }
            throw .socket(call: "recv", errno: errno)
        }
    }

    private func wait(for events: Int16) throws(HTTPError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { throw .timeout }
            let ms = Int32(clamping: max(1, Int(milliseconds(left))))
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, ms)
            if r > 0 { return }
            if r == 0 { throw .timeout }
            if errno != EINTR { throw .socket(call: "poll", errno: errno) }
        }
    }

    private static func connect(host: String, port: Int, timeout: Duration) throws(HTTPError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let r = getaddrinfo(host, String(port), &hints, &list)
        guard r == 0, let first = list else { throw .invalidAddress(host) }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var info: UnsafeMutablePointer<addrinfo>? = first
        while let ai = info {
            info = ai.pointee.ai_next
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if fd < 0 {
                lastErrno = errno
                continue
            }
            // Non-blocking connect so the timeout applies; the socket stays non-blocking (poll before each call).
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if connectSocket(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            if errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&p, 1, Int32(clamping: Int(milliseconds(timeout))))
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
                if ready > 0 && soError == 0 { return fd }
                lastErrno = ready == 0 ? ETIMEDOUT : soError
            } else {
                lastErrno = errno
            }
            closeSocket(fd)
        }
        throw .socket(call: "connect(\(host):\(port))", errno: lastErrno)
    }
}

// Free functions, so the names do not collide with `HTTPClient.close()` and friends.
private func closeSocket(_ fd: Int32) {
    _ = close(fd)
}

private func connectSocket(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}
