// The per-connection HTTP/1.1 logic as a value type: events in, actions out. No sockets, no threads;
// the libuv layer (Server.swift) feeds it and performs the actions it returns.

/// Per-connection protocol state: request parsing, the pipelined response queue, keep-alive and timers.
///
/// Every method returns the actions the I/O layer must perform, in order. Responses are written strictly
/// in request order: only the oldest unfinished request (the head of `slots`) writes to the socket, later
/// ones buffer their bytes until they become the head.
///
/// The parser is the only reference-typed member; a state machine is owned by one connection and never copied.
struct ConnectionStateMachine {
    struct Configuration {
        var maxHeaderBytes = 16 * 1024
        var maxBodyBytes = 8 * 1024 * 1024
        var maxPipelinedRequests = 16
        var headerTimeout: Duration = .seconds(10)
        var bodyTimeout: Duration = .seconds(30)
        var idleTimeout: Duration = .seconds(60)

        init() {}

        init(_ c: HTTPServerConfiguration) {
            maxHeaderBytes = c.maxHeaderBytes
            maxBodyBytes = c.maxBodyBytes
            maxPipelinedRequests = max(1, c.maxPipelinedRequests)
            headerTimeout = c.headerTimeout
            bodyTimeout = c.bodyTimeout
            idleTimeout = c.idleTimeout
        }
    }

    enum TimerKind: Equatable {
        /// No request in flight (fresh or kept-alive connection).
        case idle
        /// A request head has started but not finished.
        case header
        /// A request body is being read; restarted on every read that makes progress.
        case body
    }

    enum CloseMode: Equatable {
        /// Flush queued writes, shut down the write side, read and discard until EOF or a linger timeout.
        case graceful
        /// Close now; unsent data is dropped.
        case abort
    }

    enum Action {
        case write([UInt8])
        /// Hand a complete request to the handler.
        case deliver(id: UInt64, request: HTTPRequest)
        /// (Re)start the connection's single timer.
        case startTimer(TimerKind, Duration)
        case stopTimer
        case stopReading
        case startReading
        /// These delivered requests will never get their response written (their responders must be cancelled).
        case cancel([UInt64])
        /// The response to this request has been fully queued for writing.
        case completed(UInt64)
        /// A response head with this status was queued (for metrics).
        case responseHead(status: Int)
        case close(CloseMode)
    }

    private enum ResponseState: Equatable {
        case pending
        case streaming(BodyFraming)
        case finished
    }

    private struct Slot {
        let id: UInt64
        var keepAlive = true
        var isHTTP10 = false
        var isHEAD = false
        var expectsContinue = false
        /// The whole request has been read and handed to the handler.
        var delivered = false
        var state = ResponseState.pending
        /// Bytes waiting until this slot is the head of the queue.
        var out: [UInt8] = []
        /// Close without the graceful handshake once written (a stream that was abandoned midway).
        var abortAfter = false
    }

    private enum Phase: Equatable {
        case open
        /// No new requests are parsed; close once the queued responses are written.
        case draining
        case closed
    }

    let configuration: Configuration
    private let parser: HTTPRequestParser
    private var slots: [Slot] = []
    private var buffer: [UInt8] = []  // received but not yet parsed (parser paused or pipeline full)
    private var phase = Phase.open
    private var nextID: UInt64 = 1
    private var readingPaused = false
    private var activeTimer: TimerKind?

    init(configuration: Configuration) {
        self.configuration = configuration
        parser = HTTPRequestParser(maxHeaderBytes: configuration.maxHeaderBytes, maxBodyBytes: configuration.maxBodyBytes)
    }

    var isClosed: Bool { phase == .closed }
    /// Requests read (or being read) whose responses are not fully written.
    var queuedRequests: Int { slots.count }
    /// True when there is nothing in flight: shutdown may close this connection at once.
    var isIdle: Bool { slots.isEmpty && buffer.isEmpty && !parser.inMessage }

    // MARK: - Events from the socket

    /// The connection was accepted.
    mutating func start() -> [Action] {
        finishEvent([])
    }

    /// Bytes arrived from the peer.
    mutating func received(_ bytes: [UInt8]) -> [Action] {
        guard phase == .open else { return [] }  // draining or lingering: discard
        buffer += bytes
        var actions = processInput()
        let progress = parser.inBody
        actions = finishEvent(actions)
        if progress, phase != .closed, activeTimer == .body, !actions.contains(where: { if case .startTimer = $0 { true } else { false } }) {
            actions.append(.startTimer(.body, configuration.bodyTimeout))
        }
        return actions
    }

    /// The peer shut down its write side (EOF).
    ///
    /// A socket that was closed and one that was only half-closed look the same from here, and a client that
    /// gives up on a generation closes its socket; so, like nginx, EOF while a response is unfinished means
    /// the client is gone: unfinished responses are cancelled and the connection closes at once. With nothing
    /// in flight, what is queued is flushed and the connection closes.
    mutating func readEOF() -> [Action] {
        guard phase != .closed else { return [] }
        if slots.contains(where: { $0.delivered && $0.state != .finished }) {
            return closeActions(.abort)
        }
        return closeActions(.graceful)
    }

    /// The timer of `kind` fired.
    mutating func timerFired(_ kind: TimerKind) -> [Action] {
        guard phase != .closed, activeTimer == kind else { return [] }
        activeTimer = nil
        switch kind {
        case .idle:
            return closeActions(.abort)
        case .header, .body:
            if slots.contains(where: { $0.delivered && $0.state != .finished }) {
                // Cannot answer out of order while a response is in progress.
                return closeActions(.abort)
            }
            return finishEvent(failRequest(status: 408, message: "request not received within the timeout"))
        }
    }

    /// The server is shutting down: stop reading new requests, finish what was read, then close.
    mutating func shutdown() -> [Action] {
        guard phase != .closed else { return [] }
        if phase == .open { phase = .draining }
        buffer = []
        if let last = slots.last, !last.delivered, last.state != .finished { slots.removeLast() }
        if slots.isEmpty { return closeActions(.abort) }
        return finishEvent([])
    }

    /// The socket is gone (I/O error, reset, or the I/O layer closed it).
    mutating func closed() -> [Action] {
        guard phase != .closed else { return [] }
        return closeActions(.abort).filter { if case .close = $0 { false } else { true } }
    }

    // MARK: - Events from the responder

    /// A whole response for request `id`.
    /// A status outside 200...599 (an informational code cannot end a request) is sent as 500.
    mutating func respond(id: UInt64, status: Int, headers: [(String, String)], body: [UInt8]) -> [Action] {
        guard phase != .closed, let i = slotIndex(id), slots[i].delivered, slots[i].state == .pending else { return [] }
        let status = Self.finalStatus(status)
        let noBody = ResponseEncoding.statusHasNoBody(status)
        let close = decideClose(i, headers: headers)
        var out = ResponseEncoding.head(
            status: status, headers: headers, framing: noBody ? .none : .length(body.count),
            close: close, keepAlive10: slots[i].isHTTP10)
        if !noBody && !slots[i].isHEAD { out += body }
        slots[i].out += out
        slots[i].state = .finished
        return finishEvent([.responseHead(status: status)])
    }

    /// Starts a streamed response: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
    mutating func startStream(id: UInt64, status: Int, headers: [(String, String)]) -> [Action] {
        guard phase != .closed, let i = slotIndex(id), slots[i].delivered, slots[i].state == .pending else { return [] }
        let status = Self.finalStatus(status)
        let framing: BodyFraming =
            ResponseEncoding.statusHasNoBody(status) ? .none : (slots[i].isHTTP10 ? .untilClose : .chunked)
        if framing == .untilClose { slots[i].keepAlive = false }
        let close = decideClose(i, headers: headers)
        slots[i].out += ResponseEncoding.head(
            status: status, headers: headers, framing: framing, close: close, keepAlive10: slots[i].isHTTP10)
        slots[i].state = .streaming(framing)
        return finishEvent([.responseHead(status: status)])
    }

    /// Body bytes of a streamed response; each call becomes one chunk.
    mutating func send(id: UInt64, bytes: [UInt8]) -> [Action] {
        guard phase != .closed, let i = slotIndex(id), case .streaming(let framing) = slots[i].state,
            !slots[i].isHEAD, !bytes.isEmpty
        else { return [] }
        switch framing {
        case .chunked: slots[i].out += ResponseEncoding.chunk(bytes)
        case .untilClose: slots[i].out += bytes
        case .length, .none: return []
        }
        return finishEvent([])
    }

    /// Ends a streamed response.
    mutating func finish(id: UInt64) -> [Action] {
        guard phase != .closed, let i = slotIndex(id), case .streaming(let framing) = slots[i].state else { return [] }
        if framing == .chunked && !slots[i].isHEAD { slots[i].out += ResponseEncoding.lastChunk }
        slots[i].state = .finished
        return finishEvent([])
    }

    /// The handler dropped its responder without completing the response.
    mutating func abandon(id: UInt64) -> [Action] {
        guard phase != .closed, let i = slotIndex(id), slots[i].delivered else { return [] }
        switch slots[i].state {
        case .pending:
            return respond(
                id: id, status: 500, headers: [("Content-Type", "application/json")],
                body: ResponseEncoding.errorBody(status: 500, message: "the handler did not produce a response"))
        case .streaming:
            // The body cannot be terminated truthfully; closing tells the client it is incomplete.
            slots[i].state = .finished
            slots[i].abortAfter = true
            return finishEvent([])
        case .finished:
            return []
        }
    }

    // MARK: - Internals

    private static func finalStatus(_ status: Int) -> Int {
        (200...599).contains(status) ? status : 500
    }

    private func slotIndex(_ id: UInt64) -> Int? {
        slots.firstIndex { $0.id == id }
    }

    /// Whether the response head for slot `i` must say `Connection: close`; updates the slot's keep-alive.
    private mutating func decideClose(_ i: Int, headers: [(String, String)]) -> Bool {
        let handlerSaysClose = headers.contains {
            $0.0.lowercased() == "connection" && $0.1.lowercased().contains("close")
        }
        let lastWhileDraining = phase != .open && i == slots.count - 1
        if handlerSaysClose || lastWhileDraining { slots[i].keepAlive = false }
        return !slots[i].keepAlive
    }

    /// Parses as much buffered input as the pipeline limit allows.
    private mutating func processInput() -> [Action] {
        var actions: [Action] = []
        while phase == .open, !buffer.isEmpty, slots.count < configuration.maxPipelinedRequests {
            let parser = self.parser
            let result: Result<ParseOutput, HTTPParseError> = buffer.withUnsafeBytes { raw in
                Result { () throws(HTTPParseError) -> ParseOutput in try parser.feed(raw) }
            }
            let out: ParseOutput
            switch result {
            case .success(let o): out = o
            case .failure(let error):
                actions += failRequest(status: error.status, message: error.description)
                return actions
            }
            buffer.removeFirst(min(out.consumed, buffer.count))
            if let head = out.head {
                var slot = Slot(id: nextID)
                nextID += 1
                slot.isHTTP10 = head.isHTTP10
                slot.isHEAD = head.method == "HEAD"
                slot.expectsContinue = head.expectsContinue
                slots.append(slot)
            }
            if let request = out.request {
                if slots.last.map({ $0.delivered || $0.state != .pending }) ?? true {
                    // Cannot happen with http_parser (headers_complete precedes message_complete); stay safe.
                    slots.append(Slot(id: nextID))
                    nextID += 1
                }
                let i = slots.count - 1
                slots[i].delivered = true
                slots[i].expectsContinue = false
                slots[i].keepAlive = out.keepAlive && !out.upgrade
                actions.append(.deliver(id: slots[i].id, request: request))
                if !slots[i].keepAlive {
                    phase = .draining
                    buffer = []
                }
            }
            if out.consumed == 0 && out.request == nil { break }
        }
        return actions
    }

    /// Answers the request being read (or a new slot) with an error and stops parsing.
    private mutating func failRequest(status: Int, message: String) -> [Action] {
        phase = .draining
        buffer = []
        var slot: Slot
        if let last = slots.last, !last.delivered, last.state == .pending {
            slot = slots.removeLast()
        } else {
            slot = Slot(id: nextID)
            nextID += 1
        }
        slot.keepAlive = false
        slot.expectsContinue = false
        slot.state = .finished
        slot.out = ResponseEncoding.errorResponse(status: status, message: message, close: true)
        slots.append(slot)
        return [.responseHead(status: status)]
    }

    private mutating func closeActions(_ mode: CloseMode) -> [Action] {
        var actions: [Action] = []
        let cancelled = slots.filter { $0.delivered && $0.state != .finished }.map(\.id)
        if !cancelled.isEmpty { actions.append(.cancel(cancelled)) }
        if activeTimer != nil { actions.append(.stopTimer) }
        slots = []
        buffer = []
        activeTimer = nil
        phase = .closed
        actions.append(.close(mode))
        return actions
    }

    /// Writes what the queue head can write, retires finished slots, resumes parsing, then settles the timer.
    private mutating func finishEvent(_ initial: [Action]) -> [Action] {
        var actions = initial
        while phase != .closed {
            // Flush in request order.
            while let first = slots.first {
                if first.expectsContinue && !first.delivered && first.state == .pending {
                    actions.append(.write(ResponseEncoding.continueResponse))
                    slots[0].expectsContinue = false
                }
                if !first.out.isEmpty {
                    actions.append(.write(first.out))
                    slots[0].out = []
                }
                guard first.state == .finished else { break }
                slots.removeFirst()
                if first.delivered { actions.append(.completed(first.id)) }
                if first.abortAfter { return actions + closeActions(.abort) }
                if !first.keepAlive { return actions + closeActions(.graceful) }
            }
            // Resume parsing what is buffered if the pipeline has room.
            if phase == .open && !buffer.isEmpty && slots.count < configuration.maxPipelinedRequests {
                let more = processInput()
                actions += more
                if !more.isEmpty || phase != .open { continue }
            }
            break
        }
        guard phase != .closed else { return actions }
        let answerable = slots.contains { $0.delivered || $0.state == .finished }
        if phase == .draining && !answerable && buffer.isEmpty {
            return actions + closeActions(.graceful)
        }
        // Backpressure on the pipeline.
        let full = slots.count >= configuration.maxPipelinedRequests
        if full && !readingPaused {
            readingPaused = true
            actions.append(.stopReading)
        } else if !full && readingPaused {
            readingPaused = false
            actions.append(.startReading)
        }
        // One timer, chosen from the state.
        let desired: TimerKind?
        if parser.inBody && phase == .open {
            desired = .body
        } else if parser.inMessage && phase == .open {
            desired = .header
        } else if slots.isEmpty && buffer.isEmpty {
            desired = .idle
        } else {
            desired = nil
        }
        if desired != activeTimer {
            activeTimer = desired
            switch desired {
            case .idle: actions.append(.startTimer(.idle, configuration.idleTimeout))
            case .header: actions.append(.startTimer(.header, configuration.headerTimeout))
            case .body: actions.append(.startTimer(.body, configuration.bodyTimeout))
            case nil: actions.append(.stopTimer)
            }
        }
        return actions
    }
}
