import Foundation
import JSON
import TestSupport
import XCTest
@testable import Jinja

/// Every case of `chat_templates/template_cases.json` (rendered by Hugging Face's Jinja setup):
/// the render must equal `rendered` exactly, or fail with the template's own message where the case has `error`.
final class ReferenceTemplateTests: XCTestCase {
    func testEveryReferenceCase() throws {
        let root = TestPaths.referenceFile("chat_templates")
        let text = try String(contentsOf: root.appendingPathComponent("template_cases.json"), encoding: .utf8)
        guard case .object(let file) = try Value(jsonText: text), case .array(let cases)? = file["cases"] else {
            return XCTFail("template_cases.json has no cases array")
        }
        XCTAssertEqual(cases.count, 64)
        var compiled: [String: Template] = [:]
        var passed = 0
        for (i, entry) in cases.enumerated() {
            guard case .object(let c) = entry, case .string(let name)? = c["template"],
                  case .object(let context)? = c["context"] else {
                XCTFail("case \(i) is malformed")
                continue
            }
            let template: Template
            if let t = compiled[name] {
                template = t
            } else {
                let source = try String(contentsOf: root.appendingPathComponent("templates/" + name), encoding: .utf8)
                template = try Template(source)
                compiled[name] = template
            }
            var variables: [String: Value] = [
                "messages": c["messages"] ?? .array([]),
                "add_generation_prompt": c["add_generation_prompt"] ?? .bool(false),
            ]
            for (key, value) in context.pairs { variables[key] = value }
            let label = "case \(i) (\(name), \(c["conversation"]?.renderedString ?? "?"), generation prompt \(variables["add_generation_prompt"]!.isTruthy))"
            if case .string(let expectedError)? = c["error"] {
                XCTAssertThrowsError(try template.render(variables), label) { error in
                    guard let error = error as? TemplateError else { return XCTFail("\(label): \(error)") }
                    XCTAssertEqual(error.kind, .raised, label)
                    XCTAssertEqual(error.message, expectedError, label)
                }
                passed += 1
                continue
            }
            guard case .string(let expected)? = c["rendered"] else {
                XCTFail("\(label) has neither rendered nor error")
                continue
            }
            do {
                let rendered = try template.render(variables)
                XCTAssertEqual(rendered, expected, label)
                if rendered == expected { passed += 1 }
            } catch {
                XCTFail("\(label): \(error)")
            }
        }
        XCTAssertEqual(passed, cases.count)
    }
}
