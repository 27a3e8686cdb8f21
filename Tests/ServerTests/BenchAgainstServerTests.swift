import Foundation
import JSON
import TestSupport
import XCTest

/// `serve bench` (the built binary) against this project's own server for a few seconds: its
/// counts add up and agree with the server's usage fields and /metrics on the same run.
final class BenchAgainstServerTests: XCTestCase {
    func testBenchCountsAgreeWithServerMetrics() throws {
        guard let serve = TestPaths.releaseServe else { throw XCTSkip("build `serve` in release first") }
        let (_, port) = try ServerFixture.server()
        // Quiet server: the metrics deltas below belong to this run only.
        XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 })
        let tokensBefore = try metric("loraserve_generation_tokens_total", port: port) ?? 0
        let promptBefore = try metric("loraserve_prompt_tokens_total", port: port) ?? 0
        let okBefore = try requests(status: 200, port: port)

        let json = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(getpid()).json").path
        let (status, text) = try runToEnd(serve, ["bench", "--url", "http://127.0.0.1:\(port)", "--clients", "4",
                                                  "--duration", "4", "--max-tokens", "8-16", "--prompt-tokens", "16",
                                                  "--json", json, "--quiet"])
        XCTAssertEqual(status, 0, text)

        let result = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: json))))
        let s = try XCTUnwrap(result["summary"])
        let sent = try XCTUnwrap(s["requests_sent"]?.intValue)
        let succeeded = try XCTUnwrap(s["requests_succeeded"]?.intValue)
        let failed = try XCTUnwrap(s["requests_failed"]?.intValue)
        XCTAssertGreaterThan(sent, 0)
        XCTAssertEqual(sent, succeeded + failed)
        XCTAssertEqual(failed, 0, text)
        XCTAssertEqual(s["usage_missing"]?.intValue, 0)

        // The server's view of the same run.
        XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 })
        let tokens = (try metric("loraserve_generation_tokens_total", port: port) ?? 0) - tokensBefore
        let prompt = (try metric("loraserve_prompt_tokens_total", port: port) ?? 0) - promptBefore
        XCTAssertEqual(s["output_tokens"]?.intValue, Int(tokens), "bench output tokens = server's generated tokens")
        XCTAssertEqual(s["prompt_tokens"]?.intValue, Int(prompt), "bench prompt tokens = server's prompt tokens")
        XCTAssertEqual(try requests(status: 200, port: port) - okBefore, succeeded, "bench successes = server's 200s")
    }

    private func requests(status: Int, port: Int) throws -> Int {
        let (_, text) = try get("/metrics", port: port)
        var total = 0
        for line in text.split(separator: "\n")
        where line.hasPrefix("loraserve_requests_total{route=\"/v1/chat/completions\",status=\"\(status)\"}") {
            total += Int(Double(line.split(separator: " ").last ?? "") ?? 0)
        }
        return total
    }
}
