import Foundation
import HTTP
import JSON
import Server
import TestSupport
import XCTest

/// Things going wrong around the server: clients vanishing at every stage of a request, adapter files
/// damaged after registration, and a graceful stop while a stream is running.
final class FaultTests: XCTestCase {
    /// Open connections as /metrics reports them while answering (the metrics request itself counts as one).
    private func openConnections(_ port: Int) throws -> Double { try metric("loraserve_http_open_connections", port: port) ?? -1 }

    /// Clients gone mid-headers, mid-body, mid-stream (closed and reset): each leaves no connection
    /// and no sequence behind.
    func testClientsVanishingAtEveryStageFreeEverything() throws {
        let (_, port) = try ServerFixture.server()
        XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 })
        let baseline = try openConnections(port)
        XCTAssertEqual(baseline, 1, "only the metrics request itself is open")

        // Mid-headers.
        var c = try HTTPClient(port: port)
        try c.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Ty")
        XCTAssertTrue(try waitFor(seconds: 5) { try openConnections(port) == baseline + 1 }, "the half-sent request is open")
        c.close()
        XCTAssertTrue(try waitFor { try openConnections(port) == baseline }, "mid-headers connection not freed")

        // Mid-body.
        c = try HTTPClient(port: port)
        try c.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"model\": \"base\", ")
        usleep(100_000)
        c.close()
        XCTAssertTrue(try waitFor { try openConnections(port) == baseline }, "mid-body connection not freed")

        // Mid-stream, by close and by reset, two streams each.
        for reset in [false, true] {
            var clients: [HTTPClient] = []
            for k in 0..<2 {
                let s = try HTTPClient(port: port, timeout: .seconds(60))
                try s.sendRequest(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                                  body: Array(chatBody(k == 0 ? "Count from one to five hundred." : "Write a very long story about a dragon.", maxTokens: 2000, stream: true).utf8))
                XCTAssertEqual(try s.readResponseHead().status, 200)
                for _ in 0..<3 { _ = try s.readEvent() }   // the first is the role chunk, sent before admission
                clients.append(s)
            }
            XCTAssertEqual(try metric("loraserve_running_sequences", port: port), 2)
            for s in clients { if reset { s.reset() } else { s.close() } }
            XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 }, "sequences still running (reset: \(reset))")
            XCTAssertTrue(try waitFor { try openConnections(port) == baseline }, "stream connections not freed (reset: \(reset))")
        }
        // Mid-response of a non-streamed request: the client leaves before the answer.
        c = try HTTPClient(port: port)
        try c.sendRequest(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                          body: Array(chatBody("Write a long story.", maxTokens: 2000).utf8))
        XCTAssertTrue(try waitFor(seconds: 10) { try metric("loraserve_running_sequences", port: port) == 1 })
        c.close()
        XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 }, "non-streamed sequence still running")
        XCTAssertTrue(try waitFor { try openConnections(port) == baseline })
        XCTAssertEqual(try metric("loraserve_kv_cache_bytes", port: port), 0)
        // And the server still answers.
        XCTAssertEqual(try post("/v1/chat/completions", chatBody("Hi", maxTokens: 4), port: port).0, 200)
    }

    /// A server of its own with a tiny adapter budget: registering a second adapter evicts the first, whose
    /// files are then deleted (one adapter) or overwritten with garbage (another). Requests naming them get a
    /// clear error naming the adapter; the base model and an intact adapter keep answering.
    func testDamagedAdapterFilesFailOnlyTheirRequests() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("loraserve-fault-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        for name in ["deleted", "corrupted", "intact"] {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for file in ["adapter_config.json", "adapter_model.safetensors"] {
                try FileManager.default.copyItem(atPath: referenceAdapterPath("qv-r8") + "/" + file, toPath: dir.appendingPathComponent(file).path)
            }
        }
        var c = ServerConfiguration()
        c.port = 0
        let startup = root.appendingPathComponent("startup")   // empty: nothing registered at start
        try FileManager.default.createDirectory(at: startup, withIntermediateDirectories: true)
        c.adaptersDirectory = startup.path
        c.adapterRoots = [root.path]
        c.adapterMemoryBudgetMB = 2   // qv-r8 is 1.8 MB of weights: one adapter resident at a time
        c.maxBodyBytes = 1 << 20
        c.logLevel = "error"
        let server = try APIServer(configuration: c, modelPath: TestPaths.defaultModel.path, logger: Logger(level: "error"))
        let port = try server.start()
        defer { server.stop(deadline: .seconds(2)) }

        for name in ["deleted", "corrupted", "intact"] {
            let (status, body) = try registerAdapter(name, path: root.appendingPathComponent(name).path, port: port)
            XCTAssertEqual(status, 200, "\(name): \(String(describing: body))")
        }
        let expected = try post("/v1/chat/completions", chatBody("Hello!", model: "intact", maxTokens: 8), port: port)
        XCTAssertEqual(expected.0, 200)
        let expectedText = expected.1?["choices"]?[0]?["message"]?["content"]?.stringValue
        XCTAssertEqual(server.registry.info("deleted")?.resident, false, "the budget evicted the idle adapter")
        XCTAssertEqual(server.registry.info("corrupted")?.resident, false)

        try FileManager.default.removeItem(at: root.appendingPathComponent("deleted/adapter_model.safetensors"))
        let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: root.appendingPathComponent("corrupted/adapter_model.safetensors"))

        for name in ["deleted", "corrupted"] {
            for route in ["model", "lora"] {
                let body = route == "model" ? chatBody("Hello!", model: name, maxTokens: 8)
                    : chatBody("Hello!", maxTokens: 8, extra: ", \"lora\": [{\"name\": \(quoted(name))}]")
                let (status, json) = try post("/v1/chat/completions", body, port: port)
                XCTAssertEqual(status, 500, "\(name) via \(route)")
                let message = json?["error"]?["message"]?.stringValue ?? ""
                XCTAssertTrue(message.contains("'\(name)'") && message.contains("could not be loaded"), "\(name): \(message)")
                XCTAssertTrue(message.contains("adapter_model.safetensors") || message.contains(name), message)
            }
            // Streaming requests fail the same way before any event.
            let (status, _) = try post("/v1/chat/completions", chatBody("Hello!", model: name, maxTokens: 8, stream: true), port: port)
            XCTAssertEqual(status, 500)
        }
        // The base and the intact adapter are unaffected (and the intact one answers as before).
        XCTAssertEqual(try post("/v1/chat/completions", chatBody("Hello!", maxTokens: 8), port: port).0, 200)
        let again = try post("/v1/chat/completions", chatBody("Hello!", model: "intact", maxTokens: 8), port: port)
        XCTAssertEqual(again.0, 200)
        XCTAssertEqual(again.1?["choices"]?[0]?["message"]?["content"]?.stringValue, expectedText)
        // A fresh registration of a damaged folder is refused up front with the file named.
        let fresh = try registerAdapter("fresh", path: root.appendingPathComponent("corrupted").path, port: port)
        XCTAssertEqual(fresh.0, 400)
        XCTAssertTrue((fresh.1?["error"]?["message"]?.stringValue ?? "").contains("safetensors"), "\(String(describing: fresh.1))")
        // The damaged ones can still be removed.
        XCTAssertEqual(try removeAdapter("deleted", port: port), 200)
        XCTAssertEqual(try removeAdapter("corrupted", port: port), 200)
        XCTAssertEqual(try metric("loraserve_running_sequences", port: port), 0)
    }

    /// stop(deadline:) while a stream is in flight: the stream runs to its end ([DONE], all tokens), and
    /// new connections are refused once the stop has begun.
    func testGracefulStopLetsAStreamFinish() throws {
        var c = ServerConfiguration()
        c.port = 0
        c.adaptersDirectory = ServerFixture.adaptersRoot
        c.logLevel = "error"
        let server = try APIServer(configuration: c, modelPath: TestPaths.defaultModel.path, logger: Logger(level: "error"))
        let port = try server.start()
        let client = try HTTPClient(port: port, timeout: .seconds(120))
        defer { client.close() }
        try client.sendRequest(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                               body: Array(chatBody("Count from one to a hundred.", maxTokens: 48, stream: true).utf8))
        XCTAssertEqual(try client.readResponseHead().status, 200)
        _ = try client.readEvent()
        let stopped = ManagedAtomicFlag()
        let stopper = Thread { server.stop(deadline: .seconds(60)); stopped.set() }
        stopper.start()
        usleep(200_000)
        XCTAssertFalse(stopped.isSet, "stop waited for the stream")
        // A new connection during the drain is not served.
        let refused: Bool
        if let late = try? HTTPClient(port: port, timeout: .seconds(5)) {
            refused = (try? late.request(method: "GET", path: "/health")) == nil
            late.close()
        } else { refused = true }
        XCTAssertTrue(refused, "a request was answered after stop began")
        var done = false, usage: JSONValue?
        while let event = try client.readEvent() {
            if event.data == "[DONE]" { done = true; break }
            if let u = try JSONParser.parse(event.data)["usage"], !u.isNull { usage = u }
        }
        XCTAssertTrue(done, "the stream was cut")
        XCTAssertNotNil(usage?["completion_tokens"]?.intValue)
        XCTAssertTrue(waitFor(seconds: 30) { stopped.isSet }, "stop returned")
    }
}
