// One accepted TCP connection: the I/O half that performs its state machine's actions.
import CLibUV

/// Owns a `uv_tcp_t` and a `uv_timer_t` and performs the actions of its ``ConnectionStateMachine``.
///
/// Both handles' `data` hold an unretained pointer to this object. That is sound because the loop's
/// `connections` dictionary keeps it alive until both close callbacks have run, after which libuv never
/// calls back with these handles; the dictionary entry is removed in exactly one place,
/// `EventLoop.connectionClosed`, called from the last close callback.
final class Connection {
    let id: UInt64
    unowned let loop: EventLoop
    private let tcp: UnsafeMutablePointer<uv_tcp_t>
    private let timer: UnsafeMutablePointer<uv_timer_t>
    private var machine: ConnectionStateMachine
    private var responders: [UInt64: WeakResponder] = [:]
    private var pendingWrite: [UInt8] = []
    private var isDirty = false
    private var timerKind: ConnectionStateMachine.TimerKind?
    private var openHandles = 0
    private var closing = false
    private var lingering = false
    private var sawEOF = false
    private var remoteAddress: String?
    /// Turned away with 503 because too many connections are open.
    let rejected: Bool
    /// Counted in the loop's open connections (set by the loop after a successful accept).
    var counted = false

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
        // Only called with this type's own handles (see the type comment).
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
        var peer = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let r = withUnsafeMutableBytes(of: &peer) { raw in
            uv_tcp_getpeername(tcp, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        if r == 0 { remoteAddress = formatAddress(peer) }
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

    /// Runs one state-machine event and performs the actions it returns. Writes are queued; the loop flushes
    /// them at the end of the current libuv callback (one `uv_write` for everything queued meanwhile).
    func perform(_ event: (inout ConnectionStateMachine) -> [ConnectionStateMachine.Action]) {
        guard !closing else { return }
        let actions = event(&machine)
        for action in actions {
            switch action {
            case .write(let bytes):
                pendingWrite += bytes
                if !isDirty {
                    isDirty = true
                    loop.markDirty(self)
                }
            case .deliver(let requestID, var request):
                request.remoteAddress = remoteAddress
                let responder = HTTPResponder(inbox: loop.server.inbox, connection: id, request: requestID)
                responders[requestID] = WeakResponder(value: responder)
                loop.server.record { $0.requests += 1 }
                loop.server.handler.handle(request, responder: responder)
            case .startTimer(let kind, let duration):
                timerKind = kind
                uv_timer_start(timer, { t in
                    let connection = Connection.from(t)
                    connection.timerFired()
                    connection.loop.flushDirty()
                }, milliseconds(duration), 0)
            case .stopTimer:
                timerKind = nil
                uv_timer_stop(timer)
            case .stopReading:
                uv_read_stop(asStream(tcp))
            case .startReading:
                startReading()
            case .cancel(let ids):
                loop.server.record { $0.cancelledResponses += ids.count }
                for requestID in ids {
                    responders.removeValue(forKey: requestID)?.value?.cancel()
                }
            case .completed(let requestID):
                responders[requestID] = nil
            case .responseHead(let status):
                loop.server.record { $0.responsesByStatus[status, default: 0] += 1 }
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
                // Answers a handler gave synchronously go out in this iteration, not after the async wake-up.
                connection.loop.drainInbox()
                connection.loop.flushDirty()
            })
    }

    private func received(_ bytes: [UInt8]) {
        loop.server.record { $0.bytesReceived += bytes.count }
        guard !lingering else { return }  // discarding after our last response
        perform { $0.received(bytes) }
    }

    private func eof() {
        sawEOF = true
        uv_read_stop(asStream(tcp))
        if lingering {
            closeNow()
            return
        }
        // Answers posted before this EOF was read still count (a handler that responded at once).
        loop.drainInbox()
        perform { $0.readEOF() }
    }

    private func timerFired() {
        if lingering {
            closeNow()
            return
        }
        guard let kind = timerKind else { return }
        timerKind = nil
        perform { $0.timerFired(kind) }
    }

    /// Writes everything queued as one `uv_write`. The bytes live in a malloc'd block freed in the callback.
    func flushWrites() {
        isDirty = false
        guard !pendingWrite.isEmpty, !closing else { return }
        let count = pendingWrite.count
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 1)
        pendingWrite.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: count) }
        pendingWrite.removeAll(keepingCapacity: true)
        let request = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        request.pointee.data = memory
        var buffer = uv_buf_init(memory.assumingMemoryBound(to: CChar.self), UInt32(count))
        let r = uv_write(request, asStream(tcp), &buffer, 1) { request, status in
            let request = request!
            let handle = request.pointee.handle
            request.pointee.data.deallocate()
            request.deallocate()
            // On error (reset, or UV_ECANCELED while closing) the connection is, or is about to be, closed.
            if status < 0, let handle { Connection.from(handle).closeNow() }
        }
        if r != 0 {
            memory.deallocate()
            request.deallocate()
            closeNow()
            return
        }
        loop.server.record { $0.bytesSent += count }
        if uv_stream_get_write_queue_size(asStream(tcp)) > loop.configuration.maxPendingWriteBytes {
            closeNow()  // the peer is not reading
        }
    }

    // MARK: Closing

    /// Flushes, shuts down the write side, then reads and discards until EOF or the linger timeout, so the peer
    /// receives the last response instead of a reset caused by unread input.
    private func closeGracefully() {
        guard !closing, !lingering else { return }
        flushWrites()
        guard !closing else { return }
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

    /// Closes both handles now; unfinished responses are cancelled and unsent bytes dropped. Safe to call repeatedly.
    func closeNow() {
        guard !closing else { return }
        perform { $0.closed() }
        closing = true
        pendingWrite = []
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
