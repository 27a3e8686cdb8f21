import XCTest
@testable import HTTP

/// The connection state machine driven by hand: bytes in, actions out, no sockets.
/// Expected wire bytes are written out literally from RFC 9112 framing rules.
final class ConnectionStateMachineTests: XCTestCase {
    typealias Machine = ConnectionStateMachine

    private func configuration(pipeline: Int = 16) -> Machine.Configuration {
        var c = Machine.Configuration()
        c.maxHeaderBytes = 1024
        c.maxBodyBytes = 64
        c.maxPipelinedRequests = pipeline
        c.headerTimeout = .seconds(1)
        c.bodyTimeout = .seconds(2)
        c.idleTimeout = .seconds(3)
        return c
    }

    /// A started machine (its idle timer running).
    private func machine(pipeline: Int = 16) -> Machine {
        var m = Machine(configuration: configuration(pipeline: pipeline))
        XCTAssertEqual(render(m.start()), ["timer idle 3s"])
        return m
    }

    /// One line per action; writes verbatim, deliveries as "deliver <id> <method> <path>[?query] body=<text>".
    private func render(_ actions: [Machine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .write(let bytes): return "write " + String(decoding: bytes, as: UTF8.self)
            case .deliver(let id, let r):
                return "deliver \(id) \(r.method) \(r.path)" + (r.query.map { "?" + $0 } ?? "")
                    + " body=" + String(decoding: r.body, as: UTF8.self)
            case .startTimer(let kind, let d): return "timer \(kind) \(d.components.seconds)s"
            case .stopTimer: return "stop timer"
            case .stopReading: return "stop reading"
            case .startReading: return "start reading"
            case .cancel(let ids): return "cancel \(ids)"
            case .completed(let id): return "completed \(id)"
            case .responseHead(let status): return "head \(status)"
            case .close(let mode): return "close \(mode)"
            }
        }
    }

    private func feed(_ m: inout Machine, _ text: String) -> [String] {
        render(m.received(Array(text.utf8)))
    }

    private func requests(_ actions: [Machine.Action]) -> [HTTPRequest] {
        actions.compactMap { if case .deliver(_, let r) = $0 { r } else { nil } }
    }

    /// The single write in `lines`, or a failure.
    private func written(_ lines: [String], file: StaticString = #filePath, line: UInt = #line) -> String {
        let writes = lines.filter { $0.hasPrefix("write ") }
        XCTAssertEqual(writes.count, 1, "writes in \(lines)", file: file, line: line)
        return writes.first.map { String($0.dropFirst(6)) } ?? ""
    }

    // MARK: - Requests and responses

    func testGetIsDeliveredAndAnsweredWithContentLength() {
        var m = machine()
        let actions = m.received(Array("GET /v1/models?limit=2&x=%20 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  \r\n\r\n".utf8))
        XCTAssertEqual(render(actions), ["deliver 1 GET /v1/models?limit=2&x=%20 body=", "stop timer"])
        let r = requests(actions)[0]
        XCTAssertEqual(r.header("host"), "a")
        XCTAssertEqual(r.header("X-THING"), "v", "optional whitespace around the value is not part of it")
        XCTAssertEqual(r.version.major, 1)
        XCTAssertEqual(r.version.minor, 1)
        XCTAssertEqual(
            render(m.respond(id: 1, status: 200, headers: [("Content-Type", "text/plain")], body: Array("hi".utf8))),
            ["head 200", "write HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
             "completed 1", "timer idle 3s"])
        XCTAssertTrue(m.isIdle)
    }

    func testRequestSplitIntoSingleBytesIsReassembled() {
        var m = machine()
        let text = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        var all: [Machine.Action] = []
        for byte in text.utf8 { all += m.received([byte]) }
        XCTAssertEqual(requests(all).map { String(decoding: $0.body, as: UTF8.self) }, ["hello"])
        // First byte starts the header timer, the end of the head switches to the body timer once.
        let timers = render(all).filter { $0.hasPrefix("timer") || $0 == "stop timer" }
        XCTAssertEqual(timers.first, "timer header 1s")
        XCTAssertTrue(timers.contains("timer body 2s"))
        XCTAssertEqual(timers.last, "stop timer")
    }

    func testChunkedRequestBodyIsDecodedWithTrailers() {
        var m = machine()
        let actions = m.received(Array(
            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n".utf8))
        let r = requests(actions)
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(String(decoding: r[0].body, as: UTF8.self), "hello world")
        XCTAssertEqual(r[0].header("x-trailer"), "t")
    }

    func testPipelinedResponsesAreWrittenInRequestOrder() {
        var m = machine()
        let actions = feed(&m, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
        XCTAssertEqual(actions.filter { $0.hasPrefix("deliver") }, ["deliver 1 GET /1 body=", "deliver 2 GET /2 body=", "deliver 3 GET /3 body="])
        // The third and second answer first: nothing may be written before the first.
        XCTAssertEqual(render(m.respond(id: 3, status: 200, headers: [], body: Array("c".utf8))), ["head 200"])
        XCTAssertEqual(render(m.startStream(id: 2, status: 200, headers: [])), ["head 200"])
        XCTAssertEqual(render(m.send(id: 2, bytes: Array("b".utf8))), [])
        XCTAssertEqual(
            render(m.respond(id: 1, status: 404, headers: [], body: [])),
            ["head 404", "write HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "completed 1",
             "write HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n"])
        XCTAssertEqual(
            render(m.finish(id: 2)),
            ["write 0\r\n\r\n", "completed 2", "write HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc", "completed 3",
             "timer idle 3s"])
    }

    func testPipelineLimitPausesReadingUntilAResponseCompletes() {
        var m = machine(pipeline: 2)
        let first = feed(&m, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
        XCTAssertEqual(first, ["deliver 1 GET /1 body=", "deliver 2 GET /2 body=", "stop reading", "stop timer"])
        let next = render(m.respond(id: 1, status: 204, headers: [], body: []))
        XCTAssertEqual(next, ["head 204", "write HTTP/1.1 204 No Content\r\n\r\n", "completed 1", "deliver 3 GET /3 body="])
        XCTAssertEqual(render(m.respond(id: 2, status: 204, headers: [], body: [])),
                       ["head 204", "write HTTP/1.1 204 No Content\r\n\r\n", "completed 2", "start reading"])
    }

    func testStreamingResponseUsesChunkedFraming() {
        var m = machine()
        _ = feed(&m, "GET /s HTTP/1.1\r\n\r\n")
        XCTAssertEqual(
            render(m.startStream(id: 1, status: 200, headers: [("Content-Type", "text/event-stream")])),
            ["head 200", "write HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"])
        XCTAssertEqual(render(m.send(id: 1, bytes: Array("data: x\n\n".utf8))), ["write 9\r\ndata: x\n\n\r\n"])
        XCTAssertEqual(render(m.send(id: 1, bytes: [])), [], "an empty send must not end the body")
        XCTAssertEqual(render(m.send(id: 1, bytes: Array(repeating: UInt8(ascii: "a"), count: 26))),
                       ["write 1a\r\n" + String(repeating: "a", count: 26) + "\r\n"])
        XCTAssertEqual(render(m.finish(id: 1)), ["write 0\r\n\r\n", "completed 1", "timer idle 3s"])
        XCTAssertEqual(render(m.send(id: 1, bytes: Array("late".utf8))), [])
    }

    func testHTTP10StreamIsCloseDelimited() {
        var m = machine()
        _ = feed(&m, "GET /s HTTP/1.0\r\n\r\n")
        XCTAssertEqual(render(m.startStream(id: 1, status: 200, headers: [])),
                       ["head 200", "write HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"])
        XCTAssertEqual(render(m.send(id: 1, bytes: Array("raw".utf8))), ["write raw"])
        XCTAssertEqual(render(m.finish(id: 1)), ["completed 1", "close graceful"])
    }

    func testHTTP10KeepAliveIsHonoured() {
        var m = machine()
        _ = feed(&m, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(render(m.respond(id: 1, status: 200, headers: [], body: [])),
                       ["head 200", "write HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
                        "completed 1", "timer idle 3s"])
        var plain = machine()
        _ = feed(&plain, "GET / HTTP/1.0\r\n\r\n")
        XCTAssertEqual(render(plain.respond(id: 1, status: 200, headers: [], body: [])),
                       ["head 200", "write HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        "completed 1", "close graceful"])
    }

    func testConnectionCloseRequestEndsTheConnectionAndIgnoresLaterBytes() {
        var m = machine()
        let actions = feed(&m, "GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
        XCTAssertEqual(actions.filter { $0.hasPrefix("deliver") }, ["deliver 1 GET /a body="])
        XCTAssertEqual(feed(&m, "GET /c HTTP/1.1\r\n\r\n"), [])
        XCTAssertEqual(render(m.respond(id: 1, status: 200, headers: [], body: [])),
                       ["head 200", "write HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        "completed 1", "close graceful"])
        XCTAssertTrue(m.isClosed)
    }

    func testHandlerMayAskToClose() {
        var m = machine()
        _ = feed(&m, "GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(render(m.respond(id: 1, status: 200, headers: [("Connection", "close")], body: [])),
                       ["head 200", "write HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        "completed 1", "close graceful"])
    }

    func testHeadResponseHasLengthButNoBody() {
        var m = machine()
        _ = feed(&m, "HEAD /x HTTP/1.1\r\n\r\n")
        XCTAssertEqual(written(render(m.respond(id: 1, status: 200, headers: [], body: Array("12345".utf8)))),
                       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    }

    func testReservedAndUnsafeHandlerHeadersAreDropped() {
        var m = machine()
        _ = feed(&m, "GET / HTTP/1.1\r\n\r\n")
        let headers = [("Content-Length", "99"), ("Transfer-Encoding", "gzip"), ("X-Evil", "a\r\nInjected: 1"),
                       ("Bad Name", "v"), ("X-Ok", "fine")]
        XCTAssertEqual(written(render(m.respond(id: 1, status: 200, headers: headers, body: Array("ab".utf8)))),
                       "HTTP/1.1 200 OK\r\nX-Ok: fine\r\nContent-Length: 2\r\n\r\nab")
    }

    func testInvalidStatusBecomes500AndSecondAnswerIsIgnored() {
        var m = machine()
        _ = feed(&m, "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(render(m.respond(id: 1, status: 100, headers: [], body: [])).first, "head 500")
        XCTAssertEqual(render(m.respond(id: 1, status: 200, headers: [], body: [])), [])
        XCTAssertEqual(render(m.startStream(id: 1, status: 200, headers: [])), [])
        XCTAssertEqual(render(m.respond(id: 99, status: 200, headers: [], body: [])), [])
        XCTAssertEqual(render(m.startStream(id: 2, status: 1000, headers: [])).first, "head 500")
    }

    // MARK: - Expect: 100-continue

    func testExpectContinueIsAnsweredBeforeTheBody() {
        var m = machine()
        let head = feed(&m, "POST /e HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(head, ["write HTTP/1.1 100 Continue\r\n\r\n", "timer body 2s"])
        XCTAssertEqual(feed(&m, "abc"), ["deliver 1 POST /e body=abc", "stop timer"])
    }

    func testExpectContinueWithBodyAlreadySentGetsNoInterimResponse() {
        var m = machine()
        XCTAssertEqual(feed(&m, "POST /e HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc"),
                       ["deliver 1 POST /e body=abc", "stop timer"])
    }

    func testExpectContinueBehindAnotherRequestWaitsForItsTurn() {
        var m = machine()
        let actions = feed(&m, "GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertFalse(actions.contains { $0.contains("100 Continue") })
        let after = render(m.respond(id: 1, status: 200, headers: [], body: []))
        XCTAssertEqual(after.filter { $0.hasPrefix("write") }.last, "write HTTP/1.1 100 Continue\r\n\r\n")
    }

    func testExpectContinueWithOversizedLengthGets413Instead() {
        var m = machine()
        let w = written(feed(&m, "POST /e HTTP/1.1\r\nContent-Length: 65\r\nExpect: 100-continue\r\n\r\n"))
        XCTAssertTrue(w.hasPrefix("HTTP/1.1 413 Content Too Large\r\n"), w)
        XCTAssertFalse(w.contains("100 Continue"))
    }

    // MARK: - Hostile input

    /// The one write of a rejected request: status line, then `Connection: close`, then a graceful close.
    private func assertRejected(
        _ text: String, status: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        var m = machine()
        let actions = feed(&m, text)
        let w = written(actions, file: file, line: line)
        XCTAssertTrue(w.hasPrefix("HTTP/1.1 \(status)\r\n"), w, file: file, line: line)
        XCTAssertTrue(w.contains("\r\nConnection: close\r\n"), w, file: file, line: line)
        XCTAssertTrue(w.contains("\"error\":{\"message\":"), w, file: file, line: line)
        XCTAssertEqual(actions.last, "close graceful", file: file, line: line)
        XCTAssertFalse(actions.contains { $0.hasPrefix("deliver") }, file: file, line: line)
        XCTAssertTrue(m.isClosed, file: file, line: line)
    }

    func testMalformedRequestLineIs400() {
        assertRejected("GARBAGE\r\n\r\n", status: "400 Bad Request")
        assertRejected("GET / HTTP/9.9.9\r\n\r\n", status: "400 Bad Request")
        assertRejected("GET /a b c HTTP/1.1\r\n\r\n", status: "400 Bad Request")
    }

    func testOversizedHeadersAre431() {
        assertRejected("GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 1100) + "\r\n\r\n",
                       status: "431 Request Header Fields Too Large")
        // A flood of tiny fields counts their framing too: 300 × "A:b\r\n" is 1500 wire bytes.
        assertRejected("GET / HTTP/1.1\r\n" + String(repeating: "A:b\r\n", count: 300) + "\r\n",
                       status: "431 Request Header Fields Too Large")
        assertRejected("GET /" + String(repeating: "u", count: 1100) + " HTTP/1.1\r\n\r\n",
                       status: "431 Request Header Fields Too Large")
    }

    func testBodyLimits() {
        assertRejected("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", status: "413 Content Too Large")
        assertRejected("POST / HTTP/1.1\r\nContent-Length: 1000000000000000\r\n\r\n", status: "413 Content Too Large")
        assertRejected("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", status: "400 Bad Request")
        assertRejected("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", status: "400 Bad Request")
        assertRejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" + String(repeating: "x", count: 65),
                       status: "413 Content Too Large")
        // 64 bytes exactly is fine.
        var m = machine()
        let ok = feed(&m, "POST / HTTP/1.1\r\nContent-Length: 64\r\n\r\n" + String(repeating: "y", count: 64))
        XCTAssertEqual(ok.filter { $0.hasPrefix("deliver") }.count, 1)
    }

    func testSmugglingShapesAre400() {
        assertRejected("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       status: "400 Bad Request")
        assertRejected("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", status: "400 Bad Request")
    }

    func testInvalidChunkedEncodingIs400() {
        assertRejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", status: "400 Bad Request")
        assertRejected("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", status: "400 Bad Request")
    }

    /// Shapes Debian's non-strict http_parser accepts; the bridge's strict framing rejects them.
    func testLenientParserShapesAre400() {
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        assertRejected(chunked + "5\rXhello\r\n0\r\n\r\n", status: "400 Bad Request")
        assertRejected(chunked + "0\r\n\rX", status: "400 Bad Request")
        assertRejected("GET / HTTP/1.1\r\nA: b\r\n\rX", status: "400 Bad Request")
        assertRejected("GET / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", status: "400 Bad Request")
        assertRejected("GET / HTTP/1.1\r\nA b: c\r\n\r\n", status: "400 Bad Request")
    }

    func testChunkCRLFIsCheckedAcrossReads() {
        // The CRLF after chunk data arrives in a later read, first right, then wrong.
        var good = machine()
        var all: [Machine.Action] = []
        for part in ["POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "c", "\r", "\n0\r\n\r\n"] {
            all += good.received(Array(part.utf8))
        }
        XCTAssertEqual(requests(all).map { String(decoding: $0.body, as: UTF8.self) }, ["abc"])
        var bad = machine()
        _ = feed(&bad, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc")
        let w = written(feed(&bad, "\n\r0\r\n\r\n"))
        XCTAssertTrue(w.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), w)
    }

    func testBodyBytesMayContainCR() {
        var m = machine()
        let body = "a\rb\r\rc"
        let actions = feed(&m, "POST / HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        XCTAssertEqual(actions.first, "deliver 1 POST / body=" + body)
        var chunked = machine()
        let c = feed(&chunked, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\r\r\r\r\n0\r\n\r\n")
        XCTAssertEqual(c.first, "deliver 1 POST / body=\r\r\r")
    }

    func testErrorAfterAnsweredRequestsWaitsForThem() {
        var m = machine()
        let actions = feed(&m, "GET /ok HTTP/1.1\r\n\r\nBROKEN\r\n\r\n")
        XCTAssertEqual(actions.filter { $0.hasPrefix("deliver") }, ["deliver 1 GET /ok body="])
        XCTAssertFalse(actions.contains { $0.hasPrefix("write") }, "the 400 must wait for the first response")
        let after = render(m.respond(id: 1, status: 200, headers: [], body: []))
        let writes = after.filter { $0.hasPrefix("write") }
        XCTAssertEqual(writes.count, 2)
        XCTAssertTrue(writes[0].hasPrefix("write HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertTrue(writes[1].hasPrefix("write HTTP/1.1 400 Bad Request\r\n"))
        XCTAssertEqual(after.last, "close graceful")
    }

    // MARK: - Timers

    func testHeaderTimeoutIs408() {
        var m = machine()
        XCTAssertEqual(feed(&m, "GET / HT"), ["timer header 1s"])
        XCTAssertEqual(feed(&m, "TP/1.1\r\nX: "), [], "the header timer is a deadline, not restarted by progress")
        let actions = render(m.timerFired(.header))
        XCTAssertTrue(written(actions).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        XCTAssertEqual(actions.last, "close graceful")
    }

    func testBodyTimeoutIs408AndRestartsOnProgress() {
        var m = machine()
        XCTAssertEqual(feed(&m, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"), ["timer body 2s"])
        XCTAssertEqual(feed(&m, "cd"), ["timer body 2s"])
        XCTAssertEqual(render(m.timerFired(.header)), [], "a stale timer kind is ignored")
        XCTAssertTrue(written(render(m.timerFired(.body))).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
    }

    func testIdleTimeoutClosesWithoutAResponse() {
        var m = machine()
        XCTAssertEqual(render(m.timerFired(.idle)), ["close abort"])
    }

    func testNoTimerWhileTheHandlerWorks() {
        var m = machine()
        XCTAssertEqual(feed(&m, "GET / HTTP/1.1\r\n\r\n"), ["deliver 1 GET / body=", "stop timer"])
        XCTAssertEqual(render(m.timerFired(.idle)), [])
    }

    func testTimeoutOfAPipelinedHeadBehindAStreamAborts() {
        var m = machine()
        _ = feed(&m, "GET /1 HTTP/1.1\r\n\r\n")
        _ = m.startStream(id: 1, status: 200, headers: [])
        XCTAssertEqual(feed(&m, "GET /2"), ["timer header 1s"])
        XCTAssertEqual(render(m.timerFired(.header)), ["cancel [1]", "close abort"])
    }

    // MARK: - Closing

    func testEOFMidResponseCancels() {
        var m = machine()
        _ = feed(&m, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        _ = m.startStream(id: 1, status: 200, headers: [])
        XCTAssertEqual(render(m.readEOF()), ["cancel [1, 2]", "close abort"])
        XCTAssertEqual(render(m.send(id: 1, bytes: [1])), [])
    }

    func testEOFWhenIdleClosesGracefully() {
        var m = machine()
        XCTAssertEqual(render(m.readEOF()), ["stop timer", "close graceful"])
        var partial = machine()
        _ = feed(&partial, "GET / HTTP/1.1\r\nHost")
        XCTAssertEqual(render(partial.readEOF()), ["stop timer", "close graceful"])
    }

    func testSocketErrorCancelsWithoutACloseAction() {
        var m = machine()
        _ = feed(&m, "GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(render(m.closed()), ["cancel [1]"])
        XCTAssertEqual(render(m.closed()), [])
    }

    func testAbandonedResponderGets500OrAbortsTheStream() {
        var m = machine()
        _ = feed(&m, "GET /1 HTTP/1.1\r\n\r\n")
        let pending = render(m.abandon(id: 1))
        XCTAssertTrue(written(pending).hasPrefix("HTTP/1.1 500 Internal Server Error\r\n"))
        XCTAssertEqual(pending.last, "timer idle 3s", "a 500 for a dropped responder keeps the connection")
        _ = feed(&m, "GET /2 HTTP/1.1\r\n\r\n")
        _ = m.startStream(id: 2, status: 200, headers: [])
        XCTAssertEqual(render(m.abandon(id: 2)), ["completed 2", "close abort"])
    }

    func testShutdownClosesIdleAndDrainsInFlight() {
        var idle = machine()
        XCTAssertEqual(render(idle.shutdown()), ["stop timer", "close abort"])

        var busy = machine()
        _ = feed(&busy, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\nHo")
        XCTAssertEqual(render(busy.shutdown()), ["stop timer"], "the half-read request is dropped")
        XCTAssertEqual(feed(&busy, "st: x\r\n\r\n"), [], "nothing more is read")
        XCTAssertEqual(render(busy.respond(id: 1, status: 200, headers: [], body: [])),
                       ["head 200", "write HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        "completed 1", "close graceful"])
    }
}
