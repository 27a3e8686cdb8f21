import Foundation
import HTTP
import Server
import TestSupport
import XCTest

/// API keys: none, wrong and user keys on admin endpoints.
final class AccessTests: XCTestCase {
    func testKeys() throws {
        var c = ServerConfiguration()
        c.port = 0
        c.apiKeys = ["user-key"]
        c.adminKeys = ["admin-key"]
        c.adaptersDirectory = ServerFixture.adaptersRoot
        c.adapterRoots = [TestPaths.reference.appendingPathComponent("adapters").path]
        c.logLevel = "error"
        let server = try APIServer(configuration: c, modelPath: TestPaths.defaultModel.path, logger: Logger(level: "error"))
        let port = try server.start()
        defer { server.stop(deadline: .seconds(2)) }
        let body = chatBody("hi", maxTokens: 2)
        XCTAssertEqual(try post("/v1/chat/completions", body, port: port).0, 401)
        XCTAssertEqual(try post("/v1/chat/completions", body, port: port, headers: [("Authorization", "Bearer wrong")]).0, 401)
        XCTAssertEqual(try post("/v1/chat/completions", body, port: port, headers: [("Authorization", "Bearer user-key")]).0, 200)
        XCTAssertEqual(try get("/v1/models", port: port).0, 401)
        XCTAssertEqual(try get("/health", port: port).0, 200, "health needs no key")
        let add = "{\"name\": \"k\", \"path\": \(quoted(TestPaths.reference.appendingPathComponent("adapters/qv-r8").path))}"
        XCTAssertEqual(try post("/v1/adapters", add, port: port).0, 401)
        XCTAssertEqual(try post("/v1/adapters", add, port: port, headers: [("Authorization", "Bearer user-key")]).0, 403)
        XCTAssertEqual(try post("/v1/adapters", add, port: port, headers: [("Authorization", "Bearer wrong")]).0, 401)
        XCTAssertEqual(try post("/v1/adapters", add, port: port, headers: [("Authorization", "Bearer admin-key")]).0, 200)
        XCTAssertEqual(try get("/v1/adapters", port: port, headers: [("Authorization", "Bearer admin-key")]).0, 200)
    }
}
