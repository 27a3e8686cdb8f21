import Dispatch
import Foundation
import XCTest
@testable import HTTP

/// What the test handler saw, shared with the test body.
final class Probe: Sendable {
    private let state = Locked(State())
    let cancelled = DispatchSemaphore(value: 0)
    let streamStarted = DispatchSemaphore(value: 0)

    struct State {
        var cancelledPaths: [String] = []
        var held: [HTTPResponder] = []
        var remoteAddresses: [String] = []
    }

    func recordCancel(_ path: String) {
        state.withLock { $0.cancelledPaths.append(path) }
        cancelled.signal()
    }

    var cancelledPaths: [String] { state.withLock { $0.cancelledPaths } }

    func hold(_ responder: HTTPResponder) {
        state.withLock { $0.held.append(responder) }
        streamStarted.signal()
    }

    var held: [HTTPResponder] { state.withLock { $0.held } }

    func releaseHeld() { state.withLock { $0.held = [] } }
}

/// Routes used by the tests. Answers that take time come from other threads, as the engine's will.
struct TestRoutes: HTTPHandler {
    let probe: Probe

    func handle(_ request: HTTPRequest, responder: HTTPResponder) {
        let query = Self.query(request.query)
        switch request.path {
        case "/hello":
            responder.respond(status: 200, headers: [("Content-Type", "text/plain")], body: "hello")
        case "/echo":
            responder.respond(
                status: 200,
                headers: [("X-Method", request.method), ("X-Remote", request.remoteAddress ?? "none")],
                body: request.body)
        case "/slow":
            let ms = Int(query["ms"] ?? "") ?? 100
            let body = query["tag"] ?? "slow"
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(ms)) {
                responder.respond(status: 200, body: body)
            }
        case "/stream":
            // n events, one every ms milliseconds, from a background thread.
            let n = Int(query["n"] ?? "") ?? 5
            let ms = Int(query["ms"] ?? "") ?? 10
            let probe = probe
            responder.onCancel { probe.recordCancel("/stream") }
            DispatchQueue.global().async {
                responder.startStream(status: 200, headers: [("Content-Type", "text/event-stream")])
                probe.streamStarted.signal()
                for i in 0..<n {
                    if responder.isCancelled { return }
                    responder.send(ServerSentEvent(data: "token \(i)"))
                    usleep(useconds_t(ms * 1000))
                }
                responder.send(ServerSentEvent(data: "[DONE]"))
                responder.finish()
            }
        case "/hold":
            // Starts a stream, sends one event and keeps the responder until the test releases it.
            let probe = probe
            responder.onCancel { probe.recordCancel("/hold") }
            responder.startStream(status: 200, headers: [("Content-Type", "text/event-stream")])
            responder.send(ServerSentEvent(data: "first"))
            probe.hold(responder)
        case "/drop":
            break  // the responder is released unanswered
        default:
            responder.respond(status: 404, body: "no route \(request.path)")
        }
    }

    static func query(_ q: String?) -> [String: String] {
        var out: [String: String] = [:]
        for pair in (q ?? "").split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            out[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return out
    }
}

final class ServerIntegrationTests: XCTestCase {
    private var servers: [HTTPServer] = []
    private let probe = Probe()

    override func tearDown() {
        probe.releaseHeld()
        for server in servers {
            server.shutdown(deadline: .zero)
            server.waitUntilStopped()
        }
        servers = []
        super.tearDown()
    }

    /// A running server on an ephemeral port with test-sized timeouts.
    private func startServer(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> (HTTPServer, Int) {
        var c = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
        c.headerTimeout = .seconds(5)
        c.bodyTimeout = .seconds(5)
        c.idleTimeout = .seconds(30)
        c.lingerTimeout = .milliseconds(300)
        configure(&c)
        let server = HTTPServer(configuration: c, handler: TestRoutes(probe: probe))
        let port = try server.start()
        servers.append(server)
        XCTAssertGreaterThan(port, 0)
        XCTAssertEqual(server.port, port)
        return (server, port)
    }

    private func client(_ port: Int, timeout: Duration = .seconds(10)) throws -> HTTPClient {
        try HTTPClient(host: "127.0.0.1", port: port, timeout: timeout)
    }

    /// A fresh connection still gets a normal answer.
    private func assertHealthy(_ port: Int, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let r = try client(port).request(method: "GET", path: "/hello")
            XCTAssertEqual(r.status, 200, file: file, line: line)
            XCTAssertEqual(r.text, "hello", file: file, line: line)
        } catch {
            XCTFail("healthy check failed: \(error)", file: file, line: line)
        }
    }

    /// Polls `condition` for up to `seconds`.
    private func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    /// Sends raw bytes on a new connection and reads the one response, which must close the connection.
    private func rawExchange(_ port: Int, _ text: String) throws -> HTTPResponse {
        let c = try client(port)
        try c.write(text)
        c.expectResponse()
        let r = try c.readResponse()
        XCTAssertTrue(r.head.closesConnection, "error responses close: \(r.head.headers)")
        XCTAssertTrue(try c.waitForClose(), "server closed the connection")
        return r
    }

    // MARK: - Normal traffic

    func testKeepAliveServesManyRequestsOnOneConnection() throws {
        let (server, port) = try startServer()
        let c = try client(port)
        for i in 0..<50 {
            let body = Array("request \(i)".utf8)
            let r = try c.request(method: "POST", path: "/echo", body: body)
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.body, body)
            XCTAssertEqual(r.header("X-Method"), "POST")
            XCTAssertFalse(r.head.closesConnection)
        }
        let m = server.metrics
        XCTAssertEqual(m.acceptedConnections, 1)
        XCTAssertEqual(m.requests, 50)
        XCTAssertEqual(m.responsesByStatus[200], 50)
        XCTAssertEqual(m.openConnections, 1)
    }

    func testRemoteAddressIsTheClientsLoopbackAddress() throws {
        let (_, port) = try startServer()
        let r = try client(port).request(method: "GET", path: "/echo")
        let remote = try XCTUnwrap(r.header("X-Remote"))
        XCTAssertTrue(remote.hasPrefix("127.0.0.1:"), remote)
        XCTAssertNotNil(Int(remote.dropFirst("127.0.0.1:".count)))
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        // The first answer is the slowest; responses must still come back in request order.
        try c.write(
            "GET /slow?ms=200&tag=first HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /slow?ms=0&tag=second HTTP/1.1\r\nHost: x\r\n\r\n"
                + "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nthird"
                + "GET /hello HTTP/1.1\r\n\r\n")
        for _ in 0..<3 { c.expectResponse() }
        c.expectResponse()
        XCTAssertEqual(try c.readResponse().text, "first")
        XCTAssertEqual(try c.readResponse().text, "second")
        XCTAssertEqual(try c.readResponse().text, "third")
        XCTAssertEqual(try c.readResponse().text, "hello")
    }

    func testChunkedRequestBodyArrivingInPieces() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        let pieces = ["POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "4\r\nWiki\r\n", "5\r\npedia\r\n",
                      "E\r\n in\r\n\r\nchunks.\r\n", "0\r\n\r\n"]
        for piece in pieces {
            try c.write(piece)
            usleep(20_000)
        }
        c.expectResponse(method: "POST")
        // The example from Wikipedia's "Chunked transfer encoding" article.
        XCTAssertEqual(try c.readResponse().text, "Wikipedia in\r\n\r\nchunks.")
    }

    func testLargeBodyUpToTheLimit() throws {
        let (_, port) = try startServer { $0.maxBodyBytes = 2 << 20 }
        let body = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let r = try client(port).request(method: "POST", path: "/echo", body: body)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body, body)
        let over = try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: \((2 << 20) + 1)\r\n\r\n")
        XCTAssertEqual(over.status, 413)
    }

    func testServerSentEventsStreamFromAnotherThread() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/stream?n=5&ms=20")
        let head = try c.readResponseHead()
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Type"), "text/event-stream")
        XCTAssertEqual(head.header("Transfer-Encoding"), "chunked")
        var data: [String] = []
        while let event = try c.readEvent() { data.append(event.data) }
        XCTAssertEqual(data, ["token 0", "token 1", "token 2", "token 3", "token 4", "[DONE]"])
        // The terminal chunk leaves the connection reusable.
        XCTAssertEqual(try c.request(method: "GET", path: "/hello").text, "hello")
    }

    func testStreamPartsArriveBeforeTheStreamEnds() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/hold")
        XCTAssertEqual(try c.readResponseHead().status, 200)
        // The first event must arrive while the handler still holds the stream open.
        XCTAssertEqual(try c.readEvent()?.data, "first")
        let responder = try XCTUnwrap(probe.held.first)
        DispatchQueue.global().async {
            responder.send(ServerSentEvent(data: "second", event: "delta", id: "7"))
            responder.send(ServerSentEvent(data: "multi\nline\r\ndata\rend", event: "a\r\nb"))
            responder.send(Array(": a comment\r\ndata: raw\r\rdata: cr\r\r".utf8))
            responder.finish()
        }
        let second = try XCTUnwrap(try c.readEvent())
        XCTAssertEqual(second, ServerSentEvent(data: "second", event: "delta", id: "7"))
        // Every line break style becomes one LF between data lines (WHATWG: lines joined with LF).
        XCTAssertEqual(try c.readEvent(), ServerSentEvent(data: "multi\nline\ndata\nend", event: "ab"))
        XCTAssertEqual(try c.readEvent(), ServerSentEvent(data: "raw"))
        XCTAssertEqual(try c.readEvent(), ServerSentEvent(data: "cr"))
        XCTAssertNil(try c.readEvent())
    }

    func testExpect100Continue() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        try c.write("POST /echo HTTP/1.1\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        c.expectResponse(method: "POST")
        let interim = try c.readResponseHead()
        XCTAssertEqual(interim.status, 100)
        try c.write("hello world")
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.text, "hello world")
    }

    func testHeadAndHTTP10() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "HEAD", path: "/hello")
        let head = try c.readResponse()
        XCTAssertEqual(head.header("Content-Length"), "5")
        XCTAssertEqual(head.body, [])
        XCTAssertEqual(try c.request(method: "GET", path: "/hello").text, "hello", "no stray body bytes after HEAD")

        let old = try client(port)
        try old.write("GET /stream?n=2&ms=1 HTTP/1.0\r\n\r\n")
        old.expectResponse()
        let r = try old.readResponse()
        XCTAssertNil(r.header("Transfer-Encoding"), "HTTP/1.0 has no chunked encoding")
        XCTAssertEqual(r.text, "data: token 0\n\ndata: token 1\n\ndata: [DONE]\n\n")
        XCTAssertTrue(try old.waitForClose())
    }

    func testDroppedResponderGets500() throws {
        let (server, port) = try startServer()
        let c = try client(port)
        let r = try c.request(method: "GET", path: "/drop")
        XCTAssertEqual(r.status, 500)
        XCTAssertEqual(try c.request(method: "GET", path: "/hello").status, 200, "the connection survives")
        XCTAssertEqual(server.metrics.responsesByStatus[500], 1)
    }

    // MARK: - Hostile clients

    func testMalformedRequestLineIs400() throws {
        let (_, port) = try startServer()
        for line in ["GARBAGE\r\n\r\n", "GET / HTTP/7\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n", "\u{1}\u{2}\u{3}\r\n\r\n"] {
            XCTAssertEqual(try rawExchange(port, line).status, 400, line)
            assertHealthy(port)
        }
    }

    func testHeaderFloodIs431() throws {
        let (_, port) = try startServer { $0.maxHeaderBytes = 4096 }
        let big = "GET / HTTP/1.1\r\nX-A: " + String(repeating: "a", count: 5000) + "\r\n\r\n"
        XCTAssertEqual(try rawExchange(port, big).status, 431)
        assertHealthy(port)
        let many = "GET / HTTP/1.1\r\n" + (0..<2000).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        XCTAssertEqual(try rawExchange(port, many).status, 431)
        assertHealthy(port)
    }

    func testContentLengthLimitsAndNonsense() throws {
        let (server, port) = try startServer { $0.maxBodyBytes = 1024 }
        XCTAssertEqual(try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: 1025\r\n\r\n").status, 413)
        XCTAssertEqual(try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n").status, 413)
        XCTAssertEqual(try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n").status, 400)
        XCTAssertEqual(try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: -5\r\n\r\n").status, 400)
        XCTAssertEqual(try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: 5x\r\n\r\n").status, 400)
        XCTAssertEqual(
            try rawExchange(port, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n" + String(repeating: "z", count: 1025)).status,
            413)
        assertHealthy(port)
        let m = server.metrics
        XCTAssertEqual(m.responsesByStatus[413], 3)
        XCTAssertEqual(m.responsesByStatus[400], 3)
        XCTAssertEqual(m.requests, 1, "none of the bad ones reached the handler")
    }

    func testInvalidChunkedEncodingIs400() throws {
        let (_, port) = try startServer()
        let head = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        for body in ["xyz\r\nabc\r\n0\r\n\r\n", "3\r\nabcXX0\r\n\r\n", "3\r\nabc\r\n-1\r\n\r\n", "3\rXabc\r\n0\r\n\r\n"] {
            XCTAssertEqual(try rawExchange(port, head + body).status, 400, body)
            assertHealthy(port)
        }
    }

    func testBodyThatNeverEndsTimesOutWith408() throws {
        let (_, port) = try startServer { $0.bodyTimeout = .milliseconds(300) }
        let started = Date()
        let r = try rawExchange(port, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly a part")
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(r.status, 408)
        XCTAssertGreaterThanOrEqual(elapsed, 0.25)
        XCTAssertLessThan(elapsed, 5)
        assertHealthy(port)
    }

    func testSlowLorisHeadersTimeOutWith408EvenWhileTrickling() throws {
        let (_, port) = try startServer { $0.headerTimeout = .milliseconds(400) }
        let c = try client(port)
        let started = Date()
        try c.write("GET / HTTP/1.1\r\n")
        // One header byte every 50 ms: progress must not extend the head deadline.
        var sent = 0
        while Date().timeIntervalSince(started) < 3 {
            do { try c.write("X") } catch { break }
            sent += 1
            if try c.waitForCloseOrData(within: 0.05) { break }
        }
        c.expectResponse()
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5)
        XCTAssertGreaterThan(sent, 3)
        assertHealthy(port)
    }

    func testIdleConnectionIsClosedAfterTheIdleTimeout() throws {
        let (server, port) = try startServer { $0.idleTimeout = .milliseconds(300) }
        let c = try client(port)
        XCTAssertEqual(try c.request(method: "GET", path: "/hello").status, 200)
        XCTAssertTrue(try c.waitForClose(), "closed without a response")
        XCTAssertTrue(eventually { server.openConnections == 0 })
    }

    func testConnectionLimitAnswers503WithRetryAfter() throws {
        let (server, port) = try startServer {
            $0.maxConnections = 3
            $0.retryAfterSeconds = 7
        }
        let held = try (0..<3).map { _ in try client(port) }
        for c in held { XCTAssertEqual(try c.request(method: "GET", path: "/hello").status, 200) }
        let extra = try client(port)
        extra.expectResponse()
        let r = try extra.readResponse()
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "7")
        XCTAssertTrue(r.head.closesConnection)
        XCTAssertTrue(try extra.waitForClose())
        // The held connections still work; closing one makes room.
        XCTAssertEqual(try held[0].request(method: "GET", path: "/hello").status, 200)
        held[2].close()
        XCTAssertTrue(eventually { server.openConnections == 2 }, "open: \(server.openConnections) \(server.metrics)")
        assertHealthy(port)
        withExtendedLifetime(held) {}  // the other two stay open until here
        let m = server.metrics
        XCTAssertEqual(m.rejectedConnections, 1)
        XCTAssertEqual(m.responsesByStatus[503], 1)
    }

    func testManyIdleConnectionsDoNotStarveANewOne() throws {
        let (server, port) = try startServer {
            $0.idleTimeout = .seconds(3)
            $0.maxConnections = 400
        }
        let idle = try (0..<300).map { _ in try client(port) }
        XCTAssertTrue(eventually { server.openConnections == 300 }, "open: \(server.openConnections) \(server.metrics)")
        assertHealthy(port)
        // All of them are reaped by the idle timer.
        XCTAssertTrue(eventually(10) { server.openConnections == 0 }, "open: \(server.openConnections)")
        for c in idle.prefix(10) { XCTAssertTrue(try c.waitForClose()) }
        XCTAssertEqual(server.metrics.rejectedConnections, 0)
        withExtendedLifetime(idle) {}
    }

    // MARK: - Disconnects and cancellation

    func testClientDisconnectMidStreamFiresCancelOnce() throws {
        let (server, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/hold")
        _ = try c.readResponseHead()
        XCTAssertEqual(try c.readEvent()?.data, "first")
        let responder = try XCTUnwrap(probe.held.first)
        XCTAssertFalse(responder.isCancelled)
        c.close()
        XCTAssertEqual(probe.cancelled.wait(timeout: .now() + 5), .success)
        XCTAssertTrue(responder.isCancelled)
        XCTAssertEqual(probe.cancelledPaths, ["/hold"])
        // Use after close does nothing, from any thread; a late onCancel runs at once.
        let late = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            responder.send(ServerSentEvent(data: "late"))
            responder.finish()
            responder.respond(status: 200, body: "late")
            responder.onCancel { late.signal() }
        }
        XCTAssertEqual(late.wait(timeout: .now() + 5), .success)
        usleep(100_000)
        XCTAssertEqual(probe.cancelledPaths, ["/hold"], "fired once")
        XCTAssertEqual(server.metrics.cancelledResponses, 1)
        assertHealthy(port)
    }

    func testClientResetMidStreamFiresCancel() throws {
        let (_, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/stream?n=100000&ms=2")
        _ = try c.readResponseHead()
        _ = try c.readEvent()
        c.reset()
        XCTAssertEqual(probe.cancelled.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(probe.cancelledPaths, ["/stream"])
        assertHealthy(port)
    }

    func testClientClosingBeforeASlowAnswerCancels() throws {
        let (server, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/stream?n=3&ms=1000")
        XCTAssertEqual(probe.streamStarted.wait(timeout: .now() + 5), .success)
        c.close()
        XCTAssertEqual(probe.cancelled.wait(timeout: .now() + 5), .success)
        XCTAssertTrue(eventually { server.openConnections == 0 })
    }

    // MARK: - Shutdown

    func testGracefulShutdownFinishesAnInFlightStream() throws {
        let (server, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/stream?n=10&ms=50")
        _ = try c.readResponseHead()
        XCTAssertEqual(try c.readEvent()?.data, "token 0")
        let idle = try client(port)
        server.shutdown(deadline: .seconds(10))
        // New connections are refused once the listener is closed; the idle one is closed.
        XCTAssertTrue(eventually {
            (try? HTTPClient(host: "127.0.0.1", port: port, timeout: .seconds(1))) == nil
        })
        XCTAssertTrue(try idle.waitForClose())
        var rest: [String] = []
        while let event = try c.readEvent() { rest.append(event.data) }
        XCTAssertEqual(rest, (1..<10).map { "token \($0)" } + ["[DONE]"])
        XCTAssertTrue(try c.waitForClose())
        server.waitUntilStopped()
        XCTAssertFalse(server.isRunning)
        XCTAssertTrue(probe.cancelledPaths.isEmpty)
    }

    func testShutdownDeadlineCancelsWhatIsStillRunning() throws {
        let (server, port) = try startServer()
        let c = try client(port)
        try c.sendRequest(method: "GET", path: "/hold")
        _ = try c.readResponseHead()
        _ = try c.readEvent()
        let started = Date()
        server.shutdown(deadline: .milliseconds(300))
        XCTAssertEqual(probe.cancelled.wait(timeout: .now() + 5), .success)
        server.waitUntilStopped()
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.25)
        // The body was cut short: no terminal chunk, so the client sees the connection end mid-body.
        XCTAssertThrowsError(try c.readEvent())
        // Responders of a stopped server are inert.
        probe.held.first?.send(ServerSentEvent(data: "after stop"))
        probe.held.first?.finish()
    }

    func testAsyncStoppedAndSignalShutdown() async throws {
        let seen = Locked<[Int32]>([])
        let server = HTTPServer(configuration: .init(port: 0), handler: TestRoutes(probe: probe))
        // Installed before start, so the handlers exist before the signal is sent.
        server.handleSignals(deadline: .seconds(5)) { number in seen.withLock { $0.append(number) } }
        let port = try server.start()
        servers.append(server)
        XCTAssertEqual(try client(port).request(method: "GET", path: "/hello").status, 200)
        kill(getpid(), SIGTERM)
        await server.stopped()
        XCTAssertEqual(seen.withLock { $0 }, [SIGTERM])
        XCTAssertFalse(server.isRunning)
        await server.stopped()  // returns at once when stopped
    }

    func testStartErrors() throws {
        let (_, port) = try startServer()
        var c = HTTPServerConfiguration(host: "127.0.0.1", port: port)
        c.maxConnections = 1
        let clash = HTTPServer(configuration: c, handler: TestRoutes(probe: probe))
        XCTAssertThrowsError(try clash.start()) { error in
            guard case HTTPError.libuv(let call, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(call.hasPrefix("uv_tcp_bind") || call.hasPrefix("uv_listen"), call)
        }
        let bad = HTTPServer(configuration: .init(host: "not an address", port: 0), handler: TestRoutes(probe: probe))
        XCTAssertThrowsError(try bad.start()) { error in
            XCTAssertEqual(error as? HTTPError, .invalidAddress("not an address"))
        }
        XCTAssertThrowsError(try servers[0].start()) { XCTAssertEqual($0 as? HTTPError, .alreadyStarted) }
        clash.waitUntilStopped()  // never started: returns at once
    }
}

extension HTTPClient {
    /// Test helper: true if the server closed or sent something within `seconds`.
    func waitForCloseOrData(within seconds: Double) throws -> Bool {
        let saved = timeout
        timeout = .milliseconds(Int(seconds * 1000))
        defer { timeout = saved }
        do {
            _ = try waitForClose()
            return true
        } catch HTTPError.timeout {
            return false
        }
    }
}
