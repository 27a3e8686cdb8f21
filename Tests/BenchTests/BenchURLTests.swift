import XCTest
@testable import Bench

final class BenchURLTests: XCTestCase {
    func testParsesHostPortAndBasePath() throws {
        XCTAssertEqual(try BenchURL(parsing: "http://127.0.0.1:8080"), BenchURL(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(try BenchURL(parsing: "http://localhost:9000/"), BenchURL(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try BenchURL(parsing: "http://example.test/api/"), BenchURL(host: "example.test", port: 80, basePath: "/api"))
        XCTAssertEqual(try BenchURL(parsing: "http://[::1]:81").host, "::1")
        XCTAssertEqual(try BenchURL(parsing: "http://[::1]:81").hostHeader, "[::1]:81")
    }

    func testRejectsWhatItCannotServe() {
        for bad in ["https://x", "127.0.0.1:8080", "http://", "http://h:0", "http://h:99999", "http://h:abc", "http://[::1"] {
            XCTAssertThrowsError(try BenchURL(parsing: bad), bad)
        }
    }
}
