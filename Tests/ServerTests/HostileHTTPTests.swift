import Foundation
import HTTP
import JSON
import Server
import TestSupport
import XCTest

/// Hostile clients against the whole server (HTTP layer + API), with short timeouts. The HTTP module's
/// own tests (Tests/HTTPTests) cover each framing rule in depth on a bare server; here each attack is
/// checked once end to end for its status, and that the server answers a good request afterwards.
final class HostileHTTPTests: XCTestCase {
    nonisolated(unsafe) static var shared: (APIServer, Int)?

    static func server() throws -> (APIServer, Int) {
        if let shared { return shared }
        shared = try startServer(headerTimeout: 1, idleTimeout: 30, maxConnections: 4096)
        return shared!
    }

    /// A server on a free port with short body timeouts and small limits; `shared` or one test's own.
    static func startServer(headerTimeout: Double, idleTimeout: Double, maxConnections: Int) throws -> (APIServer, Int) {
        var c = ServerConfiguration()
        c.port = 0
        c.adaptersDirectory = ServerFixture.adaptersRoot
        c.headerTimeoutSeconds = headerTimeout
        c.bodyTimeoutSeconds = 1
        c.idleTimeoutSeconds = idleTimeout
        c.maxBodyBytes = 4 << 20
        c.maxHeaderBytes = 8 << 10
        c.maxConnections = maxConnections
        c.logLevel = "error"
        let s = try APIServer(configuration: c, modelPath: TestPaths.defaultModel.path, logger: Logger(level: "error"))
        return (s, try s.start())
    }

    /// Sends raw bytes, reads what comes back until the server closes (or `timeout`); returns the status
    /// of the first response (nil if none) and the raw text.
    private func raw(_ bytes: [UInt8], port: Int, timeout: Duration = .seconds(20), thenClose: Bool = true) throws -> (Int?, String) {
        let c = try HTTPClient(port: port, timeout: timeout)
        defer { c.close() }
        try c.write(bytes)
        guard let r = try? c.readResponse() else { return (nil, "") }
        return (r.status, r.text)
    }

    private func assertHealthy(_ port: Int, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try? post("/v1/chat/completions", chatBody("Hi", maxTokens: 2), port: port).0, 200, "after \(context)", file: file, line: line)
    }

    private func chat(_ body: [UInt8]) -> [UInt8] {
        Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
    }

    func testMalformedFraming() throws {
        let (_, port) = try Self.server()
        let cases: [(String, String, Int)] = [
            ("garbage request line", "HELLO\r\n\r\n", 400),
            ("bad version", "GET /v1/models HTTP/9.9x\r\n\r\n", 400),
            ("space in target", "GET /v1/ models HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("NUL in header", "GET /v1/models HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n", 400),
            ("header without colon", "GET /v1/models HTTP/1.1\r\nHost x\r\n\r\n", 400),
            ("negative Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
            ("non-numeric Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n", 400),
            ("conflicting Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400),
            ("huge Content-Length", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
            ("Content-Length over the limit", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n", 413),
            ("length and chunked", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("bad chunk size", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
            ("chunk without CRLF", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", 400),
            ("chunk size overflow", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400),
        ]
        for (name, request, status) in cases {
            let (got, text) = try raw(Array(request.utf8), port: port)
            XCTAssertEqual(got, status, "\(name): \(text.prefix(200))")
            assertHealthy(port, name)
        }
        // A request line without a version is HTTP/0.9 to http_parser; only HTTP/1.x is served.
        let (old, _) = try raw(Array("GET /v1/models\r\n\r\n".utf8), port: port)
        XCTAssertEqual(old, 505, "no version")
        let (two, _) = try raw(Array("GET /v1/models HTTP/2.0\r\nHost: x\r\n\r\n".utf8), port: port)
        XCTAssertEqual(two, 505, "HTTP/2.0 request line")
        assertHealthy(port, "unsupported versions")
        // A chunk that declares more than the limit is refused at its size line, without waiting for its bytes.
        let (huge, _) = try raw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\nab".utf8),
                                port: port)
        XCTAssertEqual(huge, 413, "declared chunk over the limit")
        assertHealthy(port, "declared chunk over the limit")
        // A chunked body that grows past the 4 MB limit: 413 once the limit is crossed (the client may still be
        // writing when the server answers and closes, so write errors are ignored).
        let c = try HTTPClient(port: port, timeout: .seconds(30))
        try? c.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = Array("100000\r\n".utf8) + [UInt8](repeating: 0x61, count: 0x100000) + Array("\r\n".utf8)
        for _ in 0..<5 { try? c.write(chunk) }
        XCTAssertEqual(try? c.readResponse().status, 413, "chunked body over the limit")
        c.close()
        assertHealthy(port, "chunked body over the limit")
    }

    func testHeaderFloods() throws {
        let (_, port) = try Self.server()
        // One huge header, and many small ones, both past the 8 KB head limit.
        let big = "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n"
        XCTAssertEqual(try raw(Array(big.utf8), port: port).0, 431)
        var many = "GET /v1/models HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<5_000 { many += "X-\(i): v\r\n" }
        XCTAssertEqual(try raw(Array((many + "\r\n").utf8), port: port).0, 431)
        let longURL = "GET /v1/models?\(String(repeating: "q", count: 20_000)) HTTP/1.1\r\nHost: x\r\n\r\n"
        XCTAssertEqual(try raw(Array(longURL.utf8), port: port).0, 431)
        assertHealthy(port, "header floods")
    }

    func testSlowClientsTimeOut() throws {
        let (_, port) = try Self.server()
        // Head that never ends.
        let start = Date()
        var (status, _) = try raw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n".utf8), port: port)
        XCTAssertEqual(status, 408, "head never ends")
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        // Body that never ends.
        (status, _) = try raw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"model\":".utf8), port: port)
        XCTAssertEqual(status, 408, "body never ends")
        // Chunked body that never ends.
        (status, _) = try raw(Array("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".utf8), port: port)
        XCTAssertEqual(status, 408, "chunked body never ends")
        assertHealthy(port, "slow clients")
    }

    func testHostileJSON() throws {
        let (_, port) = try Self.server()
        // max_tokens 2 so that the inputs a server may accept answer quickly.
        let user = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2"
        let user2 = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]"
        let cases: [(String, [UInt8], Int?, String?)] = [
            ("invalid UTF-8 in a string", Array("{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"a".utf8) + [0xFF, 0xFE] + Array("\"}]}".utf8), 400, nil),
            ("overlong UTF-8 encoding", Array("{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"".utf8) + [0xC0, 0xAF] + Array("\"}]}".utf8), 400, nil),
            ("lone surrogate escape", Array("{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"\\ud800\"}]}".utf8), 400, nil),
            ("10,000 nested arrays", Array(("{\"model\": \"base\", " + user + ", \"stop\": " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}").utf8), 400, nil),
            ("10,000 unclosed arrays", Array(String(repeating: "[", count: 10_000).utf8), 400, nil),
            ("10,000 nested objects", Array((String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)).utf8), 400, nil),
            ("max_tokens 1e400", Array("{\"model\": \"base\", \(user2), \"max_tokens\": 1e400}".utf8), 400, nil),
            ("max_tokens 2^64", Array("{\"model\": \"base\", \(user2), \"max_tokens\": 18446744073709551616}".utf8), 400, nil),
            ("max_tokens 1.5", Array("{\"model\": \"base\", \(user2), \"max_tokens\": 1.5}".utf8), 400, "max_tokens"),
            ("temperature 1e309", Array("{\"model\": \"base\", \(user), \"temperature\": 1e309}".utf8), 400, nil),
            ("temperature -1e-400", Array("{\"model\": \"base\", \(user), \"temperature\": -1e-400}".utf8), nil, nil),
            ("top_p NaN", Array("{\"model\": \"base\", \(user), \"top_p\": NaN}".utf8), 400, nil),
            ("seed 2^64", Array("{\"model\": \"base\", \(user), \"seed\": 18446744073709551616}".utf8), 400, "seed"),
            // Integers past Int64 are read as doubles; -2^63-1 rounds to exactly Int64.min and is taken as that.
            ("seed -2^63-1", Array("{\"model\": \"base\", \(user), \"seed\": -9223372036854775809}".utf8), nil, nil),
            ("duplicate keys", Array("{\"model\": \"base\", \(user), \(user)}".utf8), nil, nil),
            ("empty body", [], 400, nil),
            ("a bare number", Array("1".utf8), 400, nil),
            ("trailing garbage", Array("{\"model\": \"base\", \(user)} x".utf8), 400, nil),
        ]
        for (name, body, status, param) in cases {
            let c = try HTTPClient(port: port, timeout: .seconds(60))
            let response = try? c.request(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")], body: body)
            c.close()
            guard let r = response else { XCTFail("\(name): no response"); continue }
            if let status {
                XCTAssertEqual(r.status, status, "\(name): \(r.text.prefix(300))")
                let json = try? JSONParser.parse(r.body)
                XCTAssertNotNil(json?["error"]?["message"]?.stringValue, "\(name): \(r.text.prefix(300))")
                if let param { XCTAssertEqual(json?["error"]?["param"]?.stringValue, param, name) }
            } else {
                // Either answer is defensible; it must be an answer, not a 5xx.
                XCTAssertTrue(r.status == 200 || r.status == 400, "\(name): \(r.status) \(r.text.prefix(300))")
            }
            assertHealthy(port, name)
        }
    }

    /// A 1 MB prompt: far past the 8192-token context, refused with a message that says so.
    func testMegabytePrompt() throws {
        let (_, port) = try Self.server()
        let prompt = String(repeating: "word ", count: 200_000)   // 1,000,000 bytes
        for path in ["/v1/chat/completions", "/v1/completions"] {
            let body = path == "/v1/completions"
                ? "{\"model\": \"base\", \"prompt\": \(quoted(prompt)), \"max_tokens\": 4}"
                : chatBody(prompt, maxTokens: 4)
            let start = Date()
            let (status, json) = try post(path, body, port: port)
            XCTAssertTrue(status == 400 || status == 413, "\(path): \(status)")
            let message = json?["error"]?["message"]?.stringValue ?? ""
            if status == 400 { XCTAssertTrue(message.contains("8192") && message.lowercased().contains("context"), "\(path): \(message)") }
            print("1 MB prompt on \(path): \(status) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s: \(message.prefix(160))")
        }
        assertHealthy(port, "1 MB prompt")
    }

    /// 2,000 connections opened and left idle: a new, well-formed request is still answered at once.
    /// 10,000 connections opened by another process and left idle (no request at all): the server keeps them
    /// (max_connections 12,000 here) and still answers well-formed requests promptly; when the other process
    /// closes them, they are all freed.
    func testTenThousandIdleConnectionsFromAnotherProcess() throws {
        // The server's ends are in this process: 10,000 descriptors plus the test's own.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 12_000 {
            limit.rlim_cur = min(limit.rlim_max, 12_000)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        guard limit.rlim_cur >= 10_500 else {
            throw XCTSkip("the file-descriptor limit (\(limit.rlim_cur), hard \(limit.rlim_max)) is below 10,500")
        }
        let (server, port) = try Self.startServer(headerTimeout: 120, idleTimeout: 120, maxConnections: 12_000)
        defer { server.stop() }

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("client/idle_connections.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, String(port), "10000"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        defer { if p.isRunning { p.terminate() } }
        let line = String(decoding: output.fileHandleForReading.availableDataUntilNewline(), as: UTF8.self)
        XCTAssertEqual(line.trimmingCharacters(in: .whitespacesAndNewlines), "open 10000")
        try assertModelsAnswerQuickly(whileOpen: 10_001, waiting: 60, port: port)
        XCTAssertEqual(try post("/v1/chat/completions", chatBody("Hi", maxTokens: 2), port: port).0, 200, "chat with 10,000 idle")
        XCTAssertEqual(try metric("loraserve_http_rejected_connections_total", port: port), 0)
        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        XCTAssertTrue(try waitFor(seconds: 60) { try metric("loraserve_http_open_connections", port: port) == 1 }, "connections freed")
    }

    /// Waits (up to `seconds`) until the server holds at least `open` connections, then checks
    /// that GET /v1/models still answers 200 within 5 s.
    private func assertModelsAnswerQuickly(whileOpen open: Int, waiting seconds: Double, port: Int,
                                           file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(try waitFor(seconds: seconds) { (try metric("loraserve_http_open_connections", port: port) ?? 0) >= Double(open) },
                      "open: \(String(describing: try? metric("loraserve_http_open_connections", port: port)))", file: file, line: line)
        let start = Date()
        let (status, _) = try get("/v1/models", port: port)
        XCTAssertEqual(status, 200, file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, file: file, line: line)
    }

    func testTwoThousandIdleConnections() throws {
        let (_, port) = try Self.server()
        var idle: [HTTPClient] = []
        for _ in 0..<2_000 { idle.append(try HTTPClient(port: port, timeout: .seconds(30))) }
        // Half of them sent part of a head and went quiet; the header timeout will close those.
        for c in idle.prefix(1_000) { try c.write("GET /v1/models HTTP/1.1\r\n") }
        try assertModelsAnswerQuickly(whileOpen: 1_001, waiting: 30, port: port)
        assertHealthy(port, "2,000 idle connections")
        // The half-sent heads time out with 408.
        let r = try idle[0].readResponse()
        XCTAssertEqual(r.status, 408)
        XCTAssertEqual(try metric("loraserve_http_rejected_connections_total", port: port), 0)
        for c in idle { c.close() }
        XCTAssertTrue(try waitFor(seconds: 30) { try metric("loraserve_http_open_connections", port: port) == 1 }, "connections freed")
    }
}

extension FileHandle {
    /// Reads byte by byte up to and including the first newline (or the end of the stream).
    func availableDataUntilNewline() -> Data {
        var data = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty { return data }
            data.append(byte)
            if byte.first == 0x0A { return data }
        }
    }
}
