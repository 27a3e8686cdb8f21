// The public face of the server: start, shutdown, signals, metrics. The loop itself is in EventLoop.swift.
import Foundation

/// An HTTP/1.1 server on one libuv event-loop thread.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(port: 0)) { request, responder in
///     responder.respond(status: 200, headers: [("Content-Type", "text/plain")], body: "hello")
/// }
/// let port = try server.start()              // the loop runs on its own thread
/// server.handleSignals(deadline: .seconds(10)) // SIGINT/SIGTERM: graceful shutdown
/// await server.stopped()                     // or server.waitUntilStopped() from a plain thread
/// ```
///
/// The handler runs on the loop thread and must not block; the ``HTTPResponder`` it receives may be used
/// from any thread.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    let handler: any HTTPHandler
    let inbox = LoopInbox()
    private let state = Locked(State())
    private let stoppedCondition = NSCondition()

    private struct State {
        var started = false
        var running = false
        var port: Int?
        var signals: SignalRequest?
        var metrics = HTTPServerMetrics()
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    struct SignalRequest {
        var deadline: Duration
        var onSignal: (@Sendable (Int32) -> Void)?
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

    /// Binds and listens, then runs the loop on a new thread. Returns the bound port (the kernel's choice when
    /// the configured port is 0). Throws if the address is invalid or bind/listen fails; call at most once.
    /// Sets SIGPIPE to ignored for the process (a write to a closed socket must be an error, not death).
    @discardableResult
    public func start() throws(HTTPError) -> Int {
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        guard first else { throw .alreadyStarted }
        // libuv writes with write(2), which raises SIGPIPE when the peer is gone; the error code is enough.
        // Process-wide, as in every libuv server on Linux.
        signal(SIGPIPE, SIG_IGN)
        let loop = try EventLoop(server: self)
        let port = loop.boundPort
        state.withLock {
            $0.running = true
            $0.port = port
        }
        let box = UncheckedTransfer(loop)
        let thread = Thread { [self] in
            box.value.run()
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.running = false
                defer { s.waiters = [] }
                return s.waiters
            }
            stoppedCondition.lock()
            stoppedCondition.broadcast()
            stoppedCondition.unlock()
            for waiter in waiters { waiter.resume() }
        }
        thread.name = "http-loop"
        thread.start()
        return port
    }

    /// The bound port once ``start()`` succeeded.
    public var port: Int? {
        state.withLock { $0.port }
    }

    /// Stops accepting, closes idle connections, lets in-flight responses finish until `deadline` from now,
    /// then closes the rest (their responders are cancelled) and lets the loop thread return.
    /// Any thread; later calls while shutting down are ignored.
    public func shutdown(deadline: Duration) {
        inbox.post(.shutdown(deadline: deadline))
    }

    /// Handles SIGINT and SIGTERM on the loop (`uv_signal`): the first one starts ``shutdown(deadline:)``, a second
    /// one closes every connection at once. `onSignal` (optional) runs on the loop thread with the signal number
    /// first, e.g. to log. Call before or after ``start()``.
    public func handleSignals(deadline: Duration, onSignal: (@Sendable (Int32) -> Void)? = nil) {
        state.withLock { $0.signals = SignalRequest(deadline: deadline, onSignal: onSignal) }
        inbox.post(.installSignals)
    }

    var signalRequest: SignalRequest? {
        state.withLock { $0.signals }
    }

    /// Blocks the calling thread until the loop thread has returned (at once if the server is not running).
    public func waitUntilStopped() {
        stoppedCondition.lock()
        while state.withLock({ $0.running }) { stoppedCondition.wait() }
        stoppedCondition.unlock()
    }

    /// Suspends until the loop thread has returned (at once if the server is not running).
    public func stopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if !s.running { return true }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// True between a successful ``start()`` and the loop thread's return.
    public var isRunning: Bool {
        state.withLock { $0.running }
    }

    /// A snapshot of the counters.
    public var metrics: HTTPServerMetrics {
        state.withLock { $0.metrics }
    }

    /// Client connections currently open (not counting ones being turned away with 503).
    public var openConnections: Int {
        state.withLock { $0.metrics.openConnections }
    }

    /// Loop thread: updates the counters.
    func record(_ update: (inout HTTPServerMetrics) -> Void) {
        state.withLock { update(&$0.metrics) }
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
