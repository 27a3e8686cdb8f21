// The libuv layer: one event-loop thread that listens, accepts, reads and writes, and performs the actions
// of each connection's state machine. This is the only file that imports CLibUV.
import CLibUV
import Foundation

/// The loop's mailbox: a locked FIFO plus `uv_async_send` to wake the loop (wake-ups coalesce, so the loop
/// drains the whole queue on each wake).
///
/// `@unchecked Sendable`: `messages` and `async` are only touched under `lock`. `uv_async_send` is the one
/// libuv call documented as thread-safe; `async` is set to nil (under the lock) before the loop closes the
/// handle, so no thread can call it on a closed or freed handle.
final class LoopInbox: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [LoopMessage] = []
    private var async: UnsafeMutablePointer<uv_async_t>?

    /// Called on the loop thread once the async handle is initialized.
    func open(_ handle: UnsafeMutablePointer<uv_async_t>) {
        lock.lock()
        async = handle
        lock.unlock()
    }

    /// Queues a message and wakes the loop; silently dropped once the loop has stopped.
    func post(_ message: LoopMessage) {
        lock.lock()
        defer { lock.unlock() }
        guard let async else { return }
        messages.append(message)
        uv_async_send(async)
    }

    /// Takes everything queued so far (loop thread).
    func drain() -> [LoopMessage] {
        lock.lock()
        defer { lock.unlock() }
        let taken = messages
        messages = []
        return taken
    }

    /// Stops accepting messages; call on the loop thread before closing the async handle.
    func close() {
        lock.lock()
        async = nil
        messages = []
        lock.unlock()
    }
}

// MARK: - Server

/// An HTTP/1.1 server on one libuv event-loop thread.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(port: 0), handler: MyHandler())
/// let port = try server.start()        // loop runs on its own thread
/// …
/// server.shutdown(deadline: .seconds(5))
/// server.waitUntilStopped()
/// ```
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let inbox = LoopInbox()
    private let counters = Locked(Counters())
    private let stopped = NSCondition()

    struct Counters {
        var started = false
        var running = false
        var open = 0
    }

    public init(configuration: HTTPServerConfiguration, handler: any HTTPHandler) {
        self.configuration = configuration
        self.handler = handler
    }

    /// Convenience: a handler from a closure.
    public convenience init(
        configuration: HTTPServerConfiguration, handler: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void
    ) {
        self.init(configuration: configuration, handler: HTTPClosureHandler(handler))
    }

    /// Binds and listens, then runs the loop on a new thread. Returns the bound port (useful with port 0).
    /// Throws if the address is invalid or bind/listen fails; call at most once.
    @discardableResult
    public func start() throws(HTTPError) -> Int {
        let first = counters.withLock { c -> Bool in
            defer { c.started = true }
            return !c.started
        }
        guard first else { throw .alreadyStarted }
        let loop = try EventLoop(server: self)
        let port = loop.boundPort
        counters.withLock { $0.running = true }
        let box = UncheckedTransfer(loop)
        let thread = Thread { [self] in
            box.value.run()
            counters.withLock { $0.running = false }
            stopped.lock()
            stopped.broadcast()
            stopped.unlock()
        }
        thread.name = "http-loop"
        thread.start()
        return port
    }

    /// Stops accepting, closes idle connections, lets in-flight responses finish until `deadline` from now,
    /// then closes the rest (their responders are cancelled) and lets the loop thread return. Any thread; idempotent.
    public func shutdown(deadline: Duration) {
        inbox.post(.shutdown(deadline: deadline))
    }

    /// Blocks until the loop thread has returned (immediately if the server never started).
    public func waitUntilStopped() {
        stopped.lock()
        while counters.withLock({ $0.running }) { stopped.wait() }
        stopped.unlock()
    }

    /// Client connections currently open (not counting ones being turned away with 503).
    public var openConnections: Int {
        counters.withLock { $0.open }
    }

    func connectionCountChanged(by delta: Int) {
        counters.withLock { $0.open += delta }
    }
}

/// Moves a non-Sendable value to another thread.
///
/// `@unchecked Sendable`: used only to hand the `EventLoop` to the loop thread at spawn; the spawning thread
/// drops its reference right after, so the value is never used from two threads.
private struct UncheckedTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

// MARK: - Handle helpers

/// libuv handles are C structs that "inherit" by sharing a prefix; these reinterpret a pointer as its base type.
private func asHandle<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<uv_handle_t> {
    UnsafeMutablePointer(OpaquePointer(p))
}
private func asStream<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<uv_stream_t> {
    UnsafeMutablePointer(OpaquePointer(p))
}

private func milliseconds(_ d: Duration) -> UInt64 {
    let (s, atto) = d.components
    if s < 0 { return 0 }
    return UInt64(s) * 1000 + UInt64(atto / 1_000_000_000_000_000)
}

private func uvError(_ call: String, _ code: Int32) -> HTTPError {
    .libuv(call: call, code: code, message: String(cString: uv_strerror(code)))
}

// MARK: - Event loop

/// Everything that lives on the loop thread.
///
/// Handle memory is allocated here and freed after `uv_run` returns (loop-owned handles) or in the close
/// callbacks (connections). `data` of loop-owned handles holds an unretained pointer to this object, which
/// outlives `uv_run`.
final class EventLoop {
    unowned let server: HTTPServer
    let configuration: HTTPServerConfiguration
    let loop: UnsafeMutablePointer<uv_loop_t>
    private let listener: UnsafeMutablePointer<uv_tcp_t>
    private let async: UnsafeMutablePointer<uv_async_t>
    private let deadlineTimer: UnsafeMutablePointer<uv_timer_t>
    private let signals: [UnsafeMutablePointer<uv_signal_t>]
    let readBuffer: UnsafeMutableRawPointer
    let readBufferSize = 64 * 1024
    private(set) var boundPort = 0
    /// The dictionary owns each connection until both its handles are closed.
    var connections: [UInt64: Connection] = [:]
    var activeConnections = 0
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
        signals = configuration.handleSignals ? [.allocate(capacity: 1), .allocate(capacity: 1)] : []
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        let r = uv_loop_init(loop)
        if r != 0 {
            freeMemory()
            throw uvError("uv_loop_init", r)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        uv_tcp_init(loop, listener)
        uv_async_init(loop, async) { a in EventLoop.from(a).drainInbox() }
        uv_timer_init(loop, deadlineTimer)
        for h in [asHandle(listener), asHandle(async), asHandle(deadlineTimer)] { h.pointee.data = me }
        for (signal, number) in zip(signals, [SIGINT, SIGTERM]) {
            uv_signal_init(loop, signal)
            signal.pointee.data = me
            uv_signal_start(signal, { s, _ in
                let loop = EventLoop.from(s)
                loop.beginShutdown(deadline: loop.configuration.signalShutdownDeadline)
            }, number)
        }
        do {
            try bindAndListen()
        } catch {
            closeLoopHandles()
            uv_run(loop, UV_RUN_DEFAULT)
            uv_loop_close(loop)
            freeMemory()
            throw error
        }
        server.inbox.open(async)
    }

    static func from<T>(_ handle: UnsafeMutablePointer<T>?) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(asHandle(handle!).pointee.data).takeUnretainedValue()
    }

    private func bindAndListen() throws(HTTPError) {
        var storage = sockaddr_storage()
        let host = configuration.host
        let port = Int32(clamping: configuration.port)
        let ok = withUnsafeMutableBytes(of: &storage) { raw -> Bool in
            let v4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            if uv_ip4_addr(host, port, v4) == 0 { return true }
            let v6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
            return uv_ip6_addr(host, port, v6) == 0
        }
        guard ok, (0...65535).contains(configuration.port) else { throw .invalidAddress(host) }
        var r = withUnsafeBytes(of: &storage) { raw in
            uv_tcp_bind(listener, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), 0)
        }
        if r != 0 { throw uvError("uv_tcp_bind(\(host):\(port))", r) }
        r = uv_listen(asStream(listener), Int32(clamping: configuration.backlog)) { s, status in
            EventLoop.from(s).accept(status: status)
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
        guard connection.accept(from: listener) else { return }  // closes itself on failure
        if !reject {
            activeConnections += 1
            server.connectionCountChanged(by: 1)
        }
        connection.begin()
    }

    /// Called by a connection after both its handles are closed: the only place a connection is released.
    func connectionClosed(_ connection: Connection) {
        connections[connection.id] = nil
        if connection.counted {
            activeConnections -= 1
            server.connectionCountChanged(by: -1)
        }
        if shuttingDown { stopIfDone() }
    }

    // MARK: Inbox

    private func drainInbox() {
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
            }
        }
        for connection in connections.values { connection.flushWrites() }
    }

    // MARK: Shutdown

    func beginShutdown(deadline: Duration) {
        guard !shuttingDown else { return }
        shuttingDown = true
        if uv_is_closing(asHandle(listener)) == 0 { uv_close(asHandle(listener), nil) }
        for connection in Array(connections.values) {
            connection.perform { $0.shutdown() }
        }
        uv_timer_start(deadlineTimer, { t in
            let loop = EventLoop.from(t)
            for connection in Array(loop.connections.values) { connection.closeNow() }
            loop.stopIfDone()
        }, milliseconds(deadline), 0)
        stopIfDone()
    }

    private func stopIfDone() {
        guard shuttingDown, !stopped, connections.isEmpty else { return }
        stopped = true
        closeLoopHandles()
    }
}

// MARK: - Connection

/// One accepted TCP connection: owns its `uv_tcp_t` and `uv_timer_t` and performs its state machine's actions.
///
/// Both handles' `data` hold an unretained pointer to this object. That is sound because the loop's
/// `connections` dictionary keeps it alive until both close callbacks have run, after which libuv never
/// calls back with these handles; the dictionary entry is removed in exactly one place, `EventLoop.connectionClosed`.
final class Connection {
    let id: UInt64
    unowned let loop: EventLoop
    let tcp: UnsafeMutablePointer<uv_tcp_t>
    let timer: UnsafeMutablePointer<uv_timer_t>
    private var machine: ConnectionStateMachine
    private var responders: [UInt64: WeakResponder] = [:]
    private var pendingWrite: [UInt8] = []
    private var timerKind: ConnectionStateMachine.TimerKind?
    private var openHandles = 0
    private var closing = false
    private var lingering = false
    private var sawEOF = false
    let rejected: Bool
    var counted: Bool { !rejected }

    private struct WeakResponder {
        weak var value: HTTPResponder?
    }

    init(id: UInt64, loop: EventLoop, rejected: Bool) {
        self.id = id
        self.loop = loop
        self.rejected = rejected
        tcp = .allocate(capacity: 1)
        timer = .allocate(capacity: 1)
        machine = ConnectionStateMachine(configuration: .init(loop.configuration))
    }

    private static func from<T>(_ handle: UnsafeMutablePointer<T>?) -> Connection {
        Unmanaged<Connection>.fromOpaque(asHandle(handle!).pointee.data).takeUnretainedValue()
    }

    /// Initializes the handles and accepts; on failure the handles are closed and the connection released.
    func accept(from listener: UnsafeMutablePointer<uv_tcp_t>) -> Bool {
        let me = Unmanaged.passUnretained(self).toOpaque()
        uv_tcp_init(loop.loop, tcp)
        uv_timer_init(loop.loop, timer)
        asHandle(tcp).pointee.data = me
        asHandle(timer).pointee.data = me
        openHandles = 2
        loop.connections[id] = self
        if uv_accept(asStream(listener), asStream(tcp)) != 0 {
            closing = true
            closeHandles()
            return false
        }
        uv_tcp_nodelay(tcp, 1)
        return true
    }

    func begin() {
        startReading()
        if rejected {
            pendingWrite = ResponseEncoding.errorResponse(
                status: 503, message: "too many open connections (limit \(loop.configuration.maxConnections))",
                close: true, extraHeaders: [("Retry-After", String(loop.configuration.retryAfterSeconds))])
            closeGracefully()
        } else {
            perform { $0.start() }
        }
    }

    // MARK: Actions

    /// Runs one state-machine event and performs the actions it returns.
    func perform(_ event: (inout ConnectionStateMachine) -> [ConnectionStateMachine.Action]) {
        guard !closing else { return }
        let actions = event(&machine)
        for action in actions {
            switch action {
            case .write(let bytes):
                pendingWrite += bytes
            case .deliver(let requestID, let request):
                let responder = HTTPResponder(inbox: loop.server.inbox, connection: id, request: requestID)
                responders[requestID] = WeakResponder(value: responder)
                loop.server.handler.handle(request, responder: responder)
            case .startTimer(let kind, let duration):
                timerKind = kind
                uv_timer_start(timer, { t in Connection.from(t).timerFired() }, milliseconds(duration), 0)
            case .stopTimer:
                timerKind = nil
                uv_timer_stop(timer)
            case .stopReading:
                uv_read_stop(asStream(tcp))
            case .startReading:
                startReading()
            case .cancel(let ids):
                for requestID in ids {
                    responders.removeValue(forKey: requestID)?.value?.cancel()
                }
            case .completed(let requestID):
                responders[requestID] = nil
            case .close(.abort):
                closeNow()
            case .close(.graceful):
                closeGracefully()
            }
        }
    }

    private func startReading() {
        uv_read_start(
            asStream(tcp),
            { handle, _, buf in
                let loop = Connection.from(handle).loop
                buf!.pointee = uv_buf_init(
                    loop.readBuffer.assumingMemoryBound(to: CChar.self), UInt32(loop.readBufferSize))
            },
            { stream, nread, buf in
                let connection = Connection.from(stream)
                if nread > 0 {
                    // The shared read buffer is reused by the next read; copy out now.
                    let bytes = [UInt8](UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
                    connection.received(bytes)
                } else if nread == Int(UV_EOF.rawValue) {
                    connection.eof()
                } else if nread < 0 {
                    connection.closeNow()
                }
            })
    }

    private func received(_ bytes: [UInt8]) {
        guard !lingering else { return }  // discarding after our last response
        perform { $0.received(bytes) }
        flushWrites()
    }

    private func eof() {
        sawEOF = true
        uv_read_stop(asStream(tcp))
        if lingering {
            closeNow()
            return
        }
        perform { $0.readEOF() }
        flushWrites()
    }

    private func timerFired() {
        if lingering {
            closeNow()
            return
        }
        guard let kind = timerKind else { return }
        timerKind = nil
        perform { $0.timerFired(kind) }
        flushWrites()
    }

    /// Writes everything queued as one `uv_write`. The bytes live in a malloc'd block freed in the callback.
    func flushWrites() {
        guard !pendingWrite.isEmpty, !closing else { return }
        let count = pendingWrite.count
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 1)
        pendingWrite.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: count) }
        pendingWrite = []
        let request = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        request.pointee.data = memory
        var buffer = uv_buf_init(memory.assumingMemoryBound(to: CChar.self), UInt32(count))
        let r = uv_write(request, asStream(tcp), &buffer, 1) { request, status in
            let request = request!
            let handle = request.pointee.handle
            request.pointee.data.deallocate()
            request.deallocate()
            if status < 0, let handle { Connection.from(handle).closeNow() }
        }
        if r != 0 {
            memory.deallocate()
            request.deallocate()
            closeNow()
        }
    }

    // MARK: Closing

    /// Flushes, shuts down the write side, then reads and discards until EOF or the linger timeout.
    private func closeGracefully() {
        guard !closing, !lingering else { return }
        flushWrites()
        lingering = true
        timerKind = nil
        uv_timer_start(timer, { t in Connection.from(t).timerFired() }, milliseconds(loop.configuration.lingerTimeout), 0)
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let r = uv_shutdown(request, asStream(tcp)) { request, status in
            let request = request!
            let handle = request.pointee.handle
            request.deallocate()
            if let handle {
                let connection = Connection.from(handle)
                if status < 0 || connection.sawEOF { connection.closeNow() }
            }
        }
        if r != 0 {
            request.deallocate()
            closeNow()
        }
    }

    /// Closes both handles now; cancels unfinished responses. Safe to call repeatedly.
    func closeNow() {
        guard !closing else { return }
        perform { $0.closed() }
        closing = true
        closeHandles()
    }

    private func closeHandles() {
        let onClose: uv_close_cb = { h in
            let connection = Connection.from(h)
            connection.openHandles -= 1
            if connection.openHandles == 0 {
                connection.tcp.deallocate()
                connection.timer.deallocate()
                connection.loop.connectionClosed(connection)
            }
        }
        uv_close(asHandle(tcp), onClose)
        uv_close(asHandle(timer), onClose)
    }
}
