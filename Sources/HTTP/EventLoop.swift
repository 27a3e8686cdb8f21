// The libuv loop: listening, accepting, the inbox, signals and shutdown. Everything here runs on the loop
// thread, except `init` (on the thread calling HTTPServer.start, before the loop thread exists).
import CLibUV
import Foundation

// MARK: - libuv helpers

/// libuv handles are C structs that "inherit" by sharing a prefix; these reinterpret a pointer as its base type.
func asHandle<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<uv_handle_t> {
    UnsafeMutablePointer(OpaquePointer(p))
}
func asStream<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<uv_stream_t> {
    UnsafeMutablePointer(OpaquePointer(p))
}

/// A timer interval for libuv; negative durations become 0.
func milliseconds(_ d: Duration) -> UInt64 {
    let (s, atto) = d.components
    if s < 0 || (s == 0 && atto < 0) { return 0 }
    return UInt64(s) * 1000 + UInt64(atto / 1_000_000_000_000_000)
}

func uvError(_ call: String, _ code: Int32) -> HTTPError {
    .libuv(call: call, code: code, message: String(cString: uv_strerror(code)))
}

/// `"a.b.c.d:port"` or `"[v6]:port"` for a socket address, nil if it is neither family.
func formatAddress(_ storage: sockaddr_storage) -> String? {
    var storage = storage
    var name = [CChar](repeating: 0, count: 64)
    return withUnsafeBytes(of: &storage) { raw -> String? in
        switch Int32(raw.load(as: sockaddr.self).sa_family) {
        case AF_INET:
            var v4 = raw.load(as: sockaddr_in.self)
            guard uv_ip4_name(&v4, &name, name.count) == 0 else { return nil }
            let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "\(host):\(UInt16(bigEndian: v4.sin_port))"
        case AF_INET6:
            var v6 = raw.load(as: sockaddr_in6.self)
            guard uv_ip6_name(&v6, &name, name.count) == 0 else { return nil }
            let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return "[\(host)]:\(UInt16(bigEndian: v6.sin6_port))"
        default:
            return nil
        }
    }
}

// MARK: - Event loop

/// Everything that lives on the loop thread.
///
/// Handle memory is allocated here and freed after `uv_run` returns (loop-owned handles) or in the close
/// callbacks (connections). `data` of the loop-owned handles holds an unretained pointer to this object, which
/// outlives `uv_run`: the loop thread's closure owns it until `run()` returns.
final class EventLoop {
    /// Strong: the loop thread keeps the server alive while it runs (the server does not reference the loop).
    let server: HTTPServer
    let configuration: HTTPServerConfiguration
    let loop: UnsafeMutablePointer<uv_loop_t>
    private let listener: UnsafeMutablePointer<uv_tcp_t>
    private let async: UnsafeMutablePointer<uv_async_t>
    private let deadlineTimer: UnsafeMutablePointer<uv_timer_t>
    private var signals: [UnsafeMutablePointer<uv_signal_t>] = []
    /// One read buffer shared by all connections: each read is copied out before the next one (loop thread only).
    let readBuffer: UnsafeMutableRawPointer
    let readBufferSize = 64 * 1024
    private(set) var boundPort = 0
    /// Owns each connection until both its handles are closed (see `Connection`).
    var connections: [UInt64: Connection] = [:]
    /// Connections with bytes queued by their state machine, flushed at the end of each libuv callback.
    private var dirty: [Connection] = []
    private var activeConnections = 0
    private var nextConnectionID: UInt64 = 1
    private(set) var shuttingDown = false
    private var stopped = false

    init(server: HTTPServer) throws(HTTPError) {
        self.server = server
        configuration = server.configuration
        loop = .allocate(capacity: 1)
        listener = .allocate(capacity: 1)
        async = .allocate(capacity: 1)
        deadlineTimer = .allocate(capacity: 1)
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        let r = uv_loop_init(loop)
        if r != 0 {
            freeMemory()
            throw uvError("uv_loop_init", r)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        uv_tcp_init(loop, listener)
        uv_async_init(loop, async) { a in
            let loop = EventLoop.from(a)
            loop.drainInbox()
            loop.flushDirty()
        }
        uv_timer_init(loop, deadlineTimer)
        for h in [asHandle(listener), asHandle(async), asHandle(deadlineTimer)] { h.pointee.data = me }
        do {
            try bindAndListen()
        } catch {
            closeLoopHandles()
            uv_run(loop, UV_RUN_DEFAULT)
            uv_loop_close(loop)
            freeMemory()
            throw error
        }
        if server.signalRequest != nil { installSignals() }
        server.inbox.open(async)
    }

    static func from<T>(_ handle: UnsafeMutablePointer<T>?) -> EventLoop {
        // Only called with our own handles, whose `data` was set in init.
        Unmanaged<EventLoop>.fromOpaque(asHandle(handle!).pointee.data).takeUnretainedValue()
    }

    private func bindAndListen() throws(HTTPError) {
        let host = configuration.host
        guard (0...65535).contains(configuration.port) else { throw .invalidAddress("\(host) port \(configuration.port)") }
        let port = Int32(configuration.port)
        var storage = sockaddr_storage()
        let ok = withUnsafeMutableBytes(of: &storage) { raw -> Bool in
            let v4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            if uv_ip4_addr(host, port, v4) == 0 { return true }
            let v6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
            return uv_ip6_addr(host, port, v6) == 0
        }
        guard ok else { throw .invalidAddress(host) }
        var r = withUnsafeBytes(of: &storage) { raw in
            uv_tcp_bind(listener, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), 0)
        }
        if r != 0 { throw uvError("uv_tcp_bind(\(host):\(port))", r) }
        r = uv_listen(asStream(listener), Int32(clamping: configuration.backlog)) { s, status in
            let loop = EventLoop.from(s)
            loop.accept(status: status)
            loop.flushDirty()
        }
        if r != 0 { throw uvError("uv_listen(\(host):\(port))", r) }
        var bound = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        r = withUnsafeMutableBytes(of: &bound) { raw in
            uv_tcp_getsockname(listener, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        if r != 0 { throw uvError("uv_tcp_getsockname", r) }
        boundPort = withUnsafeBytes(of: &bound) { raw -> Int in
            if raw.load(as: sockaddr.self).sa_family == sa_family_t(AF_INET6) {
                return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }

    /// Runs the loop until every handle is closed, then releases the loop (loop thread).
    func run() {
        uv_run(loop, UV_RUN_DEFAULT)
        uv_loop_close(loop)
        freeMemory()
    }

    private func freeMemory() {
        loop.deallocate()
        listener.deallocate()
        async.deallocate()
        deadlineTimer.deallocate()
        for s in signals { s.deallocate() }
        readBuffer.deallocate()
    }

    private func closeLoopHandles() {
        server.inbox.close()
        var handles = [asHandle(listener), asHandle(async), asHandle(deadlineTimer)]
        handles += signals.map { asHandle($0) }
        for h in handles where uv_is_closing(h) == 0 {
            uv_close(h, nil)
        }
    }

    // MARK: Accept

    private func accept(status: Int32) {
        guard status == 0, !shuttingDown else { return }
        let id = nextConnectionID
        nextConnectionID += 1
        let reject = activeConnections >= configuration.maxConnections
        let connection = Connection(id: id, loop: self, rejected: reject)
        guard connection.accept(from: listener) else { return }  // closed itself on failure
        if reject {
            server.record {
                $0.rejectedConnections += 1
                $0.responsesByStatus[503, default: 0] += 1
            }
        } else {
            activeConnections += 1
            connection.counted = true
            server.record {
                $0.openConnections += 1
                $0.acceptedConnections += 1
            }
        }
        connection.begin()
    }

    /// Called by a connection after both its handles are closed: the only place a connection is released.
    func connectionClosed(_ connection: Connection) {
        connections[connection.id] = nil
        if connection.counted {
            activeConnections -= 1
            server.record { $0.openConnections -= 1 }
        }
        if shuttingDown { stopIfDone() }
    }

    // MARK: Writes

    /// Remembers a connection that has bytes to write; `flushDirty` writes them once per libuv callback.
    func markDirty(_ connection: Connection) {
        dirty.append(connection)
    }

    /// Writes what each dirty connection queued, one `uv_write` per connection.
    func flushDirty() {
        while !dirty.isEmpty {
            let batch = dirty
            dirty = []
            for connection in batch { connection.flushWrites() }
        }
    }

    // MARK: Inbox

    /// Performs everything other threads posted. Also called directly before acting on a read EOF, so answers a
    /// handler gave before the EOF arrived are not lost.
    func drainInbox() {
        for message in server.inbox.drain() {
            switch message {
            case .respond(let c, let r, let status, let headers, let body):
                connections[c]?.perform { $0.respond(id: r, status: status, headers: headers, body: body) }
            case .startStream(let c, let r, let status, let headers):
                connections[c]?.perform { $0.startStream(id: r, status: status, headers: headers) }
            case .send(let c, let r, let bytes):
                connections[c]?.perform { $0.send(id: r, bytes: bytes) }
            case .finish(let c, let r):
                connections[c]?.perform { $0.finish(id: r) }
            case .abandon(let c, let r):
                connections[c]?.perform { $0.abandon(id: r) }
            case .shutdown(let deadline):
                beginShutdown(deadline: deadline)
            case .installSignals:
                installSignals()
            }
        }
    }

    // MARK: Signals

    private func installSignals() {
        guard signals.isEmpty, !stopped else { return }
        let me = Unmanaged.passUnretained(self).toOpaque()
        for number in [SIGINT, SIGTERM] {
            let handle = UnsafeMutablePointer<uv_signal_t>.allocate(capacity: 1)
            uv_signal_init(loop, handle)
            handle.pointee.data = me
            signals.append(handle)
            uv_signal_start(handle, { s, number in
                let loop = EventLoop.from(s)
                loop.signalReceived(number)
                loop.flushDirty()
            }, number)
        }
    }

    private func signalReceived(_ number: Int32) {
        guard let request = server.signalRequest else { return }
        request.onSignal?(number)
        if shuttingDown {
            closeAll()
        } else {
            beginShutdown(deadline: request.deadline)
        }
    }

    // MARK: Shutdown

    func beginShutdown(deadline: Duration) {
        guard !shuttingDown else { return }
        shuttingDown = true
        if uv_is_closing(asHandle(listener)) == 0 { uv_close(asHandle(listener), nil) }
        for connection in Array(connections.values) {
            connection.perform { $0.shutdown() }
        }
        uv_timer_start(deadlineTimer, { t in EventLoop.from(t).closeAll() }, milliseconds(deadline), 0)
        stopIfDone()
    }

    /// Closes every connection now (shutdown deadline passed, or a second signal).
    private func closeAll() {
        for connection in Array(connections.values) { connection.closeNow() }
        stopIfDone()
    }

    private func stopIfDone() {
        guard shuttingDown, !stopped, connections.isEmpty else { return }
        stopped = true
        closeLoopHandles()
    }
}
