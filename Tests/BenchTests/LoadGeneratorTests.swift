import XCTest
import JSON
@testable import Bench

final class LoadGeneratorTests: XCTestCase {
    private var server: TestChatServer!

    override func setUpWithError() throws {
        server = try TestChatServer()
    }

    override func tearDown() {
        server.stop()
    }

    private func options(_ configure: (inout LoadOptions) -> Void) -> LoadOptions {
        var o = LoadOptions()
        o.url = BenchURL(host: "127.0.0.1", port: server.port)
        o.model = "base"
        o.promptTokens = 8
        o.timeout = 10
        configure(&o)
        return o
    }

    private func run(_ o: LoadOptions) throws -> BenchResult {
        var o = o
        return try BenchRun.prepare(&o).run()
    }

    /// The bench's counts against what the server says it did.
    private func assertConsistentWithServer(_ r: BenchResult, sent: Int, file: StaticString = #filePath, line: UInt = #line) {
        let actions = server.actions
        let completed = actions.compactMap { if case .completed(let t) = $0 { return t } else { return nil } }
        XCTAssertEqual(r.sent, sent, "sent", file: file, line: line)
        XCTAssertEqual(r.succeeded + r.failed, r.sent, "succeeded + failed = sent", file: file, line: line)
        XCTAssertEqual(actions.count, sent, "the server saw every request once", file: file, line: line)
        XCTAssertEqual(r.succeeded, completed.count, "succeeded", file: file, line: line)
        XCTAssertEqual(r.errors[.http(500)] ?? 0, actions.filter { $0 == .failed500 }.count, "500s", file: file, line: line)
        XCTAssertEqual(r.errors[.connection] ?? 0, actions.filter { $0 == .dropped }.count, "dropped", file: file, line: line)
        XCTAssertEqual(r.errors.values.reduce(0, +), r.failed, "errors by kind add up", file: file, line: line)
        XCTAssertEqual(r.outputTokens, completed.reduce(0, +), "tokens = sum of usage.completion_tokens", file: file, line: line)
        XCTAssertEqual(r.usageMissing, 0, file: file, line: line)
        // Every view of the same run adds up to the totals.
        XCTAssertEqual(r.records.count, sent, file: file, line: line)
        XCTAssertEqual(r.records.map(\.index), Array(0..<sent), file: file, line: line)
        XCTAssertEqual(r.timeline.map(\.succeeded).reduce(0, +), r.succeeded, file: file, line: line)
        XCTAssertEqual(r.timeline.map(\.failed).reduce(0, +), r.failed, file: file, line: line)
        XCTAssertEqual(r.timeline.map(\.outputTokens).reduce(0, +), Double(r.outputTokens), accuracy: 1e-6, file: file, line: line)
        XCTAssertEqual(r.perModel.values.map(\.sent).reduce(0, +), r.sent, file: file, line: line)
        XCTAssertEqual(r.perModel.values.map(\.succeeded).reduce(0, +), r.succeeded, file: file, line: line)
        XCTAssertEqual(r.perModel.values.map(\.outputTokens).reduce(0, +), r.outputTokens, file: file, line: line)
        XCTAssertEqual(r.latency.count, r.succeeded, file: file, line: line)
    }

    func testClosedLoopStreamingCountsMatchTheServer() throws {
        let o = options {
            $0.clients = 4
            $0.requests = 60
            $0.maxTokens = 3...9
            $0.adapters = ["a1", "a2", "a3"]
            $0.baseFraction = 0.25
        }
        let r = try run(o)
        assertConsistentWithServer(r, sent: 60)
        XCTAssertGreaterThan(r.failed, 0, "the plan has 500s and drops in 60 requests")
        XCTAssertEqual(r.timeToFirstToken.count, r.succeeded)
        // Content chunks carry two tokens each: (n+1)/2 chunks, so (n+1)/2 - 1 gaps per request.
        let expectedGaps = r.records.filter { $0.error == nil }.map { ($0.outputTokens + 1) / 2 - 1 }.reduce(0, +)
        XCTAssertEqual(r.interTokenLatency.count, expectedGaps)
        for record in r.records where record.error == nil {
            XCTAssertEqual(record.outputTokens, record.maxTokens)
            XCTAssertTrue((3...9).contains(record.maxTokens))
            XCTAssertNotNil(record.timeToFirstToken)
        }
        XCTAssertEqual(Set(r.perModel.keys), ["base", "a1", "a2", "a3"])
        // The JSON document carries the same counts.
        let json = r.json
        XCTAssertEqual(json["summary"]?["requests_sent"]?.intValue, 60)
        XCTAssertEqual(json["summary"]?["requests_failed"]?.intValue, r.failed)
        XCTAssertEqual(json["summary"]?["output_tokens"]?.intValue, r.outputTokens)
        XCTAssertEqual(json["requests"]?.arrayValue?.count, 60)
        XCTAssertEqual(json["summary"]?["errors"]?["http_500"]?.intValue, r.errors[.http(500)])
    }

    func testSameSeedSendsTheSameRequests() throws {
        let o = options { $0.clients = 3; $0.requests = 12; $0.maxTokens = 1...50; $0.adapterCount = 5 }
        let a = try run(o), b = try run(o)
        XCTAssertEqual(a.records.map(\.model), b.records.map(\.model))
        XCTAssertEqual(a.records.map(\.maxTokens), b.records.map(\.maxTokens))
    }

    func testOpenLoopNonStreaming() throws {
        let o = options { $0.rate = 400; $0.requests = 40; $0.stream = false; $0.maxTokens = 5...5 }
        let r = try run(o)
        assertConsistentWithServer(r, sent: 40)
        XCTAssertEqual(r.timeToFirstToken.count, 0, "no time to first token without streaming")
        XCTAssertEqual(r.outputTokens, 5 * r.succeeded)
        // Arrivals are scheduled ahead of sending, and latency counts from the schedule.
        for record in r.records { XCTAssertGreaterThanOrEqual(record.sentAt, record.scheduledAt) }
    }

    func testStreamingRequestAnsweredWithJSONStillCounts() throws {
        let o = options { $0.clients = 2; $0.requests = 10; $0.model = "plain"; $0.maxTokens = 4...4 }
        let r = try run(o)
        assertConsistentWithServer(r, sent: 10)
        XCTAssertEqual(r.outputTokens, 4 * r.succeeded)
        XCTAssertEqual(r.timeToFirstToken.count, 0)
    }

    func testDurationStopsIssuing() throws {
        let o = options { $0.clients = 2; $0.duration = 0.5; $0.maxTokens = 2...2 }
        let started = Date()
        let r = try run(o)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertGreaterThan(r.sent, 0)
        assertConsistentWithServer(r, sent: r.sent)
    }

    func testTimeoutsAreCountedAsTimeouts() throws {
        let o = options { $0.clients = 2; $0.requests = 2; $0.model = "stall"; $0.timeout = 0.3 }
        let r = try run(o)
        XCTAssertEqual(r.sent, 2)
        XCTAssertEqual(r.failed, 2)
        XCTAssertEqual(r.errors[.timeout], 2)
    }

    func testRefusedConnectionsAreConnectionErrors() throws {
        let port = server.port
        server.stop()
        var o = LoadOptions()
        o.url = BenchURL(host: "127.0.0.1", port: port)
        o.model = "m"
        o.clients = 2
        o.requests = 6
        let r = try run(o)
        XCTAssertEqual(r.sent, 6)
        XCTAssertEqual(r.errors[.connection], 6)
        XCTAssertEqual(r.succeeded, 0)
    }

    func testChurnAddsAndRemovesThroughTheAdminAPI() throws {
        let o = options {
            $0.clients = 1
            $0.duration = 0.6
            $0.maxTokens = 2...2
            $0.churnRate = 40
            $0.churnPath = "/adapters/qv-r8"
            $0.churnKeep = 2
        }
        let r = try run(o)
        let churn = try XCTUnwrap(r.churn)
        let counts = server.adminCounts
        XCTAssertGreaterThan(churn.addsSucceeded, 2)
        XCTAssertEqual(churn.addsSucceeded, counts.adds)
        XCTAssertEqual(churn.removesSucceeded, counts.removes)
        XCTAssertEqual(churn.addsFailed + churn.removesFailed, 0, "\(churn.errorSamples)")
        XCTAssertEqual(churn.addsSucceeded, churn.removesSucceeded, "every churn adapter is removed by the end")
        XCTAssertEqual(server.adapters, [])
    }

    func testAdminClientAgainstTheServer() throws {
        let admin = AdminClient(url: BenchURL(host: "127.0.0.1", port: server.port), adminKey: "k")
        defer { admin.close() }
        XCTAssertEqual(try admin.add(name: "my adapter", path: "/x", merged: false).status, 201)
        XCTAssertEqual(try admin.list().json?["data"]?[0]?["name"]?.stringValue, "my adapter")
        XCTAssertEqual(try admin.remove(name: "my adapter").status, 200)  // sent percent-encoded
        let missing = try admin.remove(name: "my adapter")
        XCTAssertEqual(missing.status, 404)
        XCTAssertEqual(missing.message, "adapter 'my adapter' not found")
        XCTAssertEqual(try admin.modelIDs().1, ["base"])
    }

    func testBaseModelIsDiscoveredFromTheServer() throws {
        var o = options { $0.model = nil; $0.requests = 3 }
        _ = try BenchRun.prepare(&o)
        XCTAssertEqual(o.model, "base")
    }
}
