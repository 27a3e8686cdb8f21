#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One HTTP/1.1 client connection over a POSIX TCP socket, kept alive between requests.
///
/// Blocking in style but every wait is a `poll` bounded by the request's deadline, so nothing hangs:
/// connect, send and each read time out. Not thread-safe: each load-generator thread owns one.
/// Every failure is a thrown `HTTPClientError`; the socket is then closed and the next request reconnects.
public final class HTTPConnection {
    public let target: BenchURL
    private var fd: Int32 = -1
    /// Responses completed on the current socket (0 = fresh connection).
    private var reuseCount = 0
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    /// Whether the last exchange got any response byte (a reused connection that got none was stale).
    private var lastExchangeReceivedBytes = false

    public init(target: BenchURL) {
        self.target = target
    }

    deinit { close() }

    public var isOpen: Bool { fd >= 0 }

    public func close() {
        if fd >= 0 {
            _ = systemClose(fd)
            fd = -1
        }
        reuseCount = 0
    }

    /// Sends one request and streams the response: `onHead` once, then `onBody` with each piece of
    /// the (de-chunked) body as it arrives. Returns the head. `deadline` is a `MonotonicClock` value
    /// for the whole exchange.
    ///
    /// A kept-alive connection that the server had already closed is detected and, when not one byte
    /// of the response arrived, the request is retried once on a fresh connection.
    @discardableResult
    public func send(method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [],
                     deadline: UInt64,
                     onHead: (HTTPResponseHead) -> Void = { _ in },
                     onBody: ([UInt8]) -> Void = { _ in }) throws(HTTPClientError) -> HTTPResponseHead {
        let request = Self.encode(method: method, path: target.basePath + path, host: target.hostHeader,
                                  headers: headers, body: body)
        if fd >= 0 && peerHasClosed() { close() }
        let wasReused = fd >= 0
        do {
            return try exchange(request, isHead: method == "HEAD", deadline: deadline, onHead: onHead, onBody: onBody)
        } catch let error where wasReused && !lastExchangeReceivedBytes && error.isConnectionClosed {
            close()
            return try exchange(request, isHead: method == "HEAD", deadline: deadline, onHead: onHead, onBody: onBody)
        }
    }

    // MARK: - Exchange

    private func exchange(_ request: [UInt8], isHead: Bool, deadline: UInt64,
                          onHead: (HTTPResponseHead) -> Void, onBody: ([UInt8]) -> Void) throws(HTTPClientError) -> HTTPResponseHead {
        if fd < 0 { try connect(deadline: deadline) }
        var parser = HTTPResponseParser()
        parser.noBodyExpected = isHead
        var head: HTTPResponseHead?
        lastExchangeReceivedBytes = false
        do throws(HTTPClientError) {
            try writeAll(request, deadline: deadline)
            while !parser.isComplete {
                let n = try readSome(deadline: deadline)
                let events: [HTTPResponseParser.Event]
                if n == 0 {
                    events = try parser.finish()
                } else {
                    lastExchangeReceivedBytes = true
                    events = try parser.feed(readBuffer[0..<n])
                }
                for event in events {
                    switch event {
                    case .head(let h):
                        head = h
                        onHead(h)
                    case .body(let bytes):
                        onBody(bytes)
                    case .end:
                        break
                    }
                }
                if n == 0 && !parser.isComplete {
                    throw HTTPClientError.connectionClosed("end of stream before the response ended")
                }
            }
        } catch {
            close()
            throw error
        }
        guard let head else {
            close()
            throw .protocolViolation("response ended without a head")
        }
        if head.keepAlive && parser.isComplete && !Self.bodyWasCloseDelimited(head, isHead: isHead) {
            reuseCount += 1
        } else {
            close()
        }
        return head
    }

    static func bodyWasCloseDelimited(_ head: HTTPResponseHead, isHead: Bool) -> Bool {
        if isHead || head.status == 204 || head.status == 304 { return false }
        if head.header("Transfer-Encoding")?.lowercased().contains("chunked") == true { return false }
        return head.header("Content-Length") == nil
    }

    static func encode(method: String, path: String, host: String, headers: [(String, String)], body: [UInt8]) -> [UInt8] {
        var text = "\(method) \(path.isEmpty ? "/" : path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + body
    }

    // MARK: - Sockets

    private func connect(deadline: UInt64) throws(HTTPClientError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .connect("cannot resolve '\(target.host)': \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address for '\(target.host)'"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let s = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if s < 0 { lastError = errnoText("socket"); continue }
            var one: Int32 = 1
            _ = setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            #if canImport(Darwin)
            _ = setsockopt(s, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
            #endif
            _ = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK)
            if systemConnect(s, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                fd = s
                return
            }
            guard errno == EINPROGRESS else {
                lastError = errnoText("connect to \(target.hostHeader)")
                _ = systemClose(s)
                continue
            }
            do {
                try waitFor(s, events: Int16(POLLOUT), deadline: deadline, phase: "connect")
            } catch {
                _ = systemClose(s)
                throw error
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(s, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError == 0 {
                fd = s
                return
            }
            lastError = "connect to \(target.hostHeader): \(String(cString: strerror(soError)))"
            _ = systemClose(s)
        }
        throw .connect(lastError)
    }

    private func writeAll(_ bytes: [UInt8], deadline: UInt64) throws(HTTPClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                #if canImport(Glibc)
                return Glibc.send(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                #else
                return Darwin.send(fd, base + offset, bytes.count - offset, 0)
                #endif
            }
            if n > 0 {
                offset += n
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                try waitFor(fd, events: Int16(POLLOUT), deadline: deadline, phase: "sending the request")
            } else if n < 0 && (errno == EPIPE || errno == ECONNRESET) {
                throw .connectionClosed(errnoText("send"))
            } else {
                throw .io(errnoText("send"))
            }
        }
    }

    /// Reads what is available into `readBuffer`, waiting until the deadline; 0 = end of stream.
    private func readSome(deadline: UInt64) throws(HTTPClientError) -> Int {
        while true {
            let n = readBuffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return recv(fd, base, raw.count, 0)
            }
            if n >= 0 { return n }
            switch errno {
            case EAGAIN, EWOULDBLOCK, EINTR:
                try waitFor(fd, events: Int16(POLLIN), deadline: deadline, phase: "waiting for the response")
            case ECONNRESET, EPIPE:
                throw .connectionClosed(errnoText("recv"))
            default:
                throw .io(errnoText("recv"))
            }
        }
    }

    private func waitFor(_ socket: Int32, events: Int16, deadline: UInt64, phase: String) throws(HTTPClientError) {
        while true {
            let now = MonotonicClock.now()
            guard now < deadline else { throw .timeout(phase) }
            let milliseconds = Int32(min((deadline - now + 999_999) / 1_000_000, 60_000))
            var pfd = pollfd(fd: socket, events: events, revents: 0)
            let rc = poll(&pfd, 1, milliseconds)
            if rc > 0 { return }  // ready, or an error/hang-up that the next call reports
            if rc < 0 && errno != EINTR { throw .io(errnoText("poll")) }
        }
    }

    /// A kept-alive socket that is readable while no request is outstanding has been closed by the
    /// server (or holds junk): either way it cannot be reused.
    private func peerHasClosed() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) != 0
    }

    private func errnoText(_ call: String) -> String {
        "\(call): \(String(cString: strerror(errno)))"
    }
}

extension HTTPClientError {
    var isConnectionClosed: Bool {
        if case .connectionClosed = self { return true }
        return false
    }
}

// The C calls whose names the class's own methods shadow.
private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}

private func systemConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>?, _ length: socklen_t) -> Int32 {
    #if canImport(Glibc)
    return Glibc.connect(fd, address, length)
    #else
    return Darwin.connect(fd, address, length)
    #endif
}
