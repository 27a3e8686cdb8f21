import Foundation
import TestSupport
import XCTest

/// The official `openai` Python package (installed by scripts/install.sh from
/// scripts/requirements-test.txt) talks to the server through its own types.
final class OpenAIClientTests: XCTestCase {
    func testOfficialPythonClient() throws {
        let (_, port) = try ServerFixture.server()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("client/openai_client_test.py").path
        let (status, text) = try runToEnd("/usr/bin/env", ["python3", script, "http://127.0.0.1:\(port)/v1"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("ok"), text)
    }
}
