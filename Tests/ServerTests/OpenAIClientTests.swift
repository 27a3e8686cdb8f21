import Foundation
import XCTest

/// The official `openai` Python package (installed by scripts/install.sh from
/// scripts/requirements-test.txt) talks to the server through its own types.
final class OpenAIClientTests: XCTestCase {
    func testOfficialPythonClient() throws {
        let (_, port) = try ServerFixture.server()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("client/openai_client_test.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "http://127.0.0.1:\(port)/v1"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("ok"), text)
    }
}
