// The cross-thread half of the server: handler protocol and responder.
import Foundation

/// Serves requests. Called on the event-loop thread; must not block: hand work to another thread and
/// answer through the ``HTTPResponder`` from there.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest, responder: HTTPResponder)
}

/// An ``HTTPHandler`` made from a closure.
public struct HTTPClosureHandler: HTTPHandler {
    let body: @Sendable (HTTPRequest, HTTPResponder) -> Void
    public init(_ body: @escaping @Sendable (HTTPRequest, HTTPResponder) -> Void) { self.body = body }
    public func handle(_ request: HTTPRequest, responder: HTTPResponder) { body(request, responder) }
}

/// Answers one request, from any thread.
///
/// Use either ``respond(status:headers:body:)`` once, or ``startStream(status:headers:)``, any number of
/// ``send(_:)-(Array<UInt8>)``, then ``finish()``. Calls out of that order, and calls after cancellation, are ignored.
/// If the responder is released without finishing, the client gets a 500 (or, mid-stream, a closed connection).
///
/// When the connection closes before the response is finished (client gone, timeout, shutdown deadline),
/// ``isCancelled`` becomes true and the ``onCancel(_:)`` callbacks run once, on the loop thread: keep them short
/// and do not block. Every method is safe to call at any time from any thread; after cancellation they do nothing.
public final class HTTPResponder: Sendable {
    private enum Phase { case idle, streaming, done }
    private struct State {
        var phase = Phase.idle
        var cancelled = false
        var callbacks: [@Sendable () -> Void] = []
    }

    private let inbox: LoopInbox
    private let connection: UInt64
    private let request: UInt64
    private let state = Locked(State())

    init(inbox: LoopInbox, connection: UInt64, request: UInt64) {
        self.inbox = inbox
        self.connection = connection
        self.request = request
    }

    deinit {
        let abandoned = state.withLock { !$0.cancelled && $0.phase != .done }
        if abandoned { inbox.post(.abandon(connection: connection, request: request)) }
    }

    /// Sends a whole response with `Content-Length`. `Content-Length`, `Transfer-Encoding` and `Connection`
    /// headers are set by the server; `("Connection", "close")` asks it to close after this response.
    public func respond(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        guard transition(from: .idle, to: .done) else { return }
        inbox.post(.respond(connection: connection, request: request, status: status, headers: headers, body: body))
    }

    /// Convenience: a UTF-8 body.
    public func respond(status: Int, headers: [(String, String)] = [], body: String) {
        respond(status: status, headers: headers, body: Array(body.utf8))
    }

    /// Starts a streamed response (chunked; close-delimited for HTTP/1.0 clients). For Server-Sent Events pass
    /// `("Content-Type", "text/event-stream")` and send ``ServerSentEvent``s.
    public func startStream(status: Int, headers: [(String, String)] = []) {
        guard transition(from: .idle, to: .streaming) else { return }
        inbox.post(.startStream(connection: connection, request: request, status: status, headers: headers))
    }

    /// Sends body bytes of a streamed response; each call is written (as one chunk) as soon as the loop wakes.
    public func send(_ bytes: [UInt8]) {
        let ok = state.withLock { $0.phase == .streaming && !$0.cancelled }
        guard ok else { return }
        inbox.post(.send(connection: connection, request: request, bytes: bytes))
    }

    /// Sends one Server-Sent Event.
    public func send(_ event: ServerSentEvent) {
        send(event.encoded)
    }

    /// Ends a streamed response.
    public func finish() {
        guard transition(from: .streaming, to: .done) else { return }
        inbox.post(.finish(connection: connection, request: request))
    }

    /// True once the connection closed before the response finished.
    public var isCancelled: Bool {
        state.withLock { $0.cancelled }
    }

    /// Registers a callback run once when the response is cancelled; runs immediately if it already was.
    public func onCancel(_ callback: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.cancelled { return s.phase != .done }
            s.callbacks.append(callback)
            return false
        }
        if runNow { callback() }
    }

    /// Loop thread: the connection is gone before the response finished.
    func cancel() {
        let callbacks = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.cancelled else { return [] }
            s.cancelled = true
            defer { s.callbacks = [] }
            // A handler that already finished has nothing left to free.
            return s.phase == .done ? [] : s.callbacks
        }
        for callback in callbacks { callback() }
    }

    private func transition(from: Phase, to: Phase) -> Bool {
        state.withLock { s in
            guard s.phase == from, !s.cancelled else { return false }
            s.phase = to
            return true
        }
    }
}
