import Foundation
import GGUF
import Jinja
import TestSupport
import XCTest
@testable import Tokenizer

/// `serve template`: its library code path and the built executable, against
/// chat_template_cases.json.
final class TemplatePreviewTests: XCTestCase {
    struct Case {
        let messagesJSON: String
        let rendered: String
        let ids: [Int32]
    }

    private func cases() throws -> [Case] {
        let text = try String(contentsOf: TestPaths.referenceFile("chat_template_cases.json"), encoding: .utf8)
        guard case .object(let root) = try Value(jsonText: text), case .array(let cases)? = root["cases"] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        let toJSON = try Template("{{ m | tojson }}")
        return try cases.map { entry in
            guard case .object(let c) = entry, let messages = c["messages"], case .string(let rendered)? = c["rendered"],
                  case .array(let ids)? = c["ids"] else { throw CocoaError(.fileReadCorruptFile) }
            return Case(messagesJSON: try toJSON.render(["m": messages]), rendered: rendered,
                        ids: ids.map { if case .int(let i) = $0 { Int32(i) } else { -1 } })
        }
    }

    private func idsText(_ ids: [Int32]) -> String { "[" + ids.map(String.init).joined(separator: ", ") + "]" }

    func testLibraryPathMatchesReference() throws {
        let file = try GGUFFile(path: TestPaths.defaultModel.path)
        let chat = try ChatTemplate(gguf: file, tokenizer: try defaultTokenizer())
        for (i, c) in try cases().enumerated() {
            let messages = try TemplatePreview.messages(fromJSON: c.messagesJSON)
            XCTAssertEqual(try TemplatePreview.output(chat, messages: messages, addGenerationPrompt: true, variables: [:], ids: false),
                           c.rendered, "case \(i)")
            XCTAssertEqual(try TemplatePreview.output(chat, messages: messages, addGenerationPrompt: true, variables: [:], ids: true),
                           idsText(c.ids), "case \(i)")
        }
    }

    func testVariablesAndMessagesParsing() throws {
        XCTAssertEqual(try TemplatePreview.variable("date_string=26 Jul 2024").value, "26 Jul 2024")
        XCTAssertEqual(try TemplatePreview.variable("enable_thinking=false").value, false)
        XCTAssertEqual(try TemplatePreview.variable("n=3").value, 3)
        XCTAssertEqual(try TemplatePreview.variable("s=\"quoted\"").value, "quoted")
        XCTAssertThrowsError(try TemplatePreview.variable("novalue"))
        XCTAssertThrowsError(try TemplatePreview.variable("1x=2"))
        XCTAssertThrowsError(try TemplatePreview.messages(fromJSON: "{\"role\": \"user\"}"))
        XCTAssertThrowsError(try TemplatePreview.messages(fromJSON: "[oops"))
    }

    // MARK: - The executable

    /// The `serve` executable built beside the test bundle, if it was built.
    private func serveExecutable() throws -> URL {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [folder.appendingPathComponent("serve"), folder.deletingLastPathComponent().appendingPathComponent("serve")]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw XCTSkip("the serve executable is not built next to the tests (\(folder.path))")
        }
        return found
    }

    private func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    func testServeTemplateIDsMatchReference() throws {
        let serve = try serveExecutable()
        for (i, c) in try cases().enumerated() {
            let result = try run(serve, ["template", "--model", TestPaths.defaultModel.path, "--messages", c.messagesJSON, "--ids"])
            XCTAssertEqual(result.status, 0, "case \(i): \(result.stderr)")
            XCTAssertEqual(result.stdout, idsText(c.ids) + "\n", "case \(i)")
            let text = try run(serve, ["template", "--model", TestPaths.defaultModel.path, "--messages", c.messagesJSON])
            XCTAssertEqual(text.stdout, c.rendered, "case \(i)")
        }
    }

    func testServeTemplateReportsTheTemplatesError() throws {
        let serve = try serveExecutable()
        let gemma = TestPaths.referenceFile("chat_templates/templates/google-gemma-2-2b-it.jinja").path
        let result = try run(serve, ["template", "--model", TestPaths.defaultModel.path, "--template", gemma,
                                     "--messages", #"[{"role": "system", "content": "s"}]"#])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stdout, "")
        XCTAssertTrue(result.stderr.contains("System role not supported"), result.stderr)
    }
}
